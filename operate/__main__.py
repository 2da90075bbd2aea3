"""``python -m operate COMMAND ...``: the operator commands' one entry point (operate/cli.py)."""

import sys

from operate.cli import main

sys.exit(main())
