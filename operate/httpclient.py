"""Helpers for the project's one HTTP client, ``requests`` (operator commands and the test host): an
adapter that connects to another address than the URL's while checking TLS for the URL's host (curl's
``--resolve``), a bearer token that an entry in ``~/.netrc`` cannot replace, and one line for what went
wrong."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase


class ResolveAdapter(HTTPAdapter):
    """Sends SNI for ``hostname`` and checks the server's certificate against it, whatever address the
    request goes to: mount it for ``https://ADDRESS:PORT`` and send ``Host: hostname``. No retries."""

    def __init__(self, hostname: str):
        self.hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(server_hostname=self.hostname, assert_hostname=self.hostname)
        super().init_poolmanager(*args, **kwargs)


class Bearer(AuthBase):
    """``Authorization: Bearer TOKEN``, given as requests' ``auth``: a header alone would be replaced by
    a ``~/.netrc`` entry for the host (requests reads it when no ``auth`` is given)."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def reason(exc: BaseException) -> str:
    """What went wrong, on one line: for a connection that failed, the cause (``Failed to resolve
    'x'``, ``Connection refused``, a certificate error) rather than requests' wrapper around it."""
    cause = exc.args[0] if isinstance(exc, requests.RequestException) and exc.args else None
    inner = getattr(cause, "reason", None)  # urllib3's MaxRetryError, inside requests' ConnectionError
    text = str(inner if isinstance(inner, BaseException) else exc)
    return " ".join(text.split()) or exc.__class__.__name__
