"""The cloud layer (the Pulumi program and what it is built from), and the two facts every layer
shares: where this checkout is and what the project is called."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository (checkout) root
PROJECT = "llm-platform"  # Pulumi.yaml's name
NAMESPACE = PROJECT  # of the project's own stack config keys (Pulumi's default: the project name)
