"""Operator commands (run from an operator's machine or CI, never on a host): plan, pin, converge,
drift, rebuild, smoke, bench and fine-tuning. Each has its entry point in ``scripts/``."""
