"""``python -m operate.drift`` (scripts/drift)."""

import sys

from operate.drift.cli import main

sys.exit(main())
