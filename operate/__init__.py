"""Operator commands (run from an operator's machine or CI, never on a host): plan, pin, host-keys,
reach, converge, drift, smoke, rebuild-host, rotate-key, finetune, bench. One command line for all
of them, with one exit-code table: ``python -m operate COMMAND`` (operate/cli.py); each has its
thin entry point ``scripts/COMMAND``."""
