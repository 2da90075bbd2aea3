"""Pulumi entry point (Pulumi.yaml: ``main: stacks/``). All logic lives in ``components``."""

from components.program import main

main()
