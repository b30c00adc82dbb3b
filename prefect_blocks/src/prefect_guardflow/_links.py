"""Where guardflow blocks point the Prefect UI: documentation and logo, one place for all."""

from __future__ import annotations

__all__ = ["DOCUMENTATION_URL", "LOGO_URL"]

DOCUMENTATION_URL = "https://github.com/guardflow/guardflow/tree/main/docs"
LOGO_URL = "https://raw.githubusercontent.com/guardflow/guardflow/main/docs/assets/logo.png"
