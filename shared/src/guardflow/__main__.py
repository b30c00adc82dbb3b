"""Allow ``python -m guardflow``, the same as the ``guardflow`` command."""

from __future__ import annotations

import sys

from guardflow.cli import main

if __name__ == "__main__":
    sys.exit(main())
