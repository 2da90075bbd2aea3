"""One module per role, each with ``apply(data)``: install → configure → activate. A service is
restarted only when one of its own files changed."""
