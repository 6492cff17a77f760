"""The configuration a command runs with, or one line saying what in it is wrong."""

from __future__ import annotations

from pydantic import ValidationError

from wattx.cli.errors import fail
from wattx.config import Settings


def load_settings() -> Settings:
    """The configuration (environment ``WATTX_*``, ``WATTX_CONFIG_FILE``), or one line naming
    each setting that is wrong (never its value: it may be a secret) and exit 1.

    Commands that build a service of their own (``wattx simulate``, ``wattx demo``) call it
    too: their settings still take whatever they do not set themselves from the same
    environment.
    """
    try:
        return Settings()
    except ValidationError as wrong:
        fail(
            "; ".join(
                f"WATTX_{'_'.join(str(part) for part in error['loc']).upper()}: "
                + error["msg"].removeprefix("Value error, ")
                for error in wrong.errors()
            )
        )
