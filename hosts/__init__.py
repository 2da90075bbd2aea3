"""The host layer: the pyinfra deploy that configures a model host (deploy.py, its roles/ and
hardening/), with the facts and operations pyinfra does not ship and the deploy's own plumbing
(inventory, fact cache, dry-run plan). It runs where pyinfra runs (an operator's machine or CI)
and reaches the host over SSH."""
