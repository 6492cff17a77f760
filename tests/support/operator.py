"""One chain operator per test process for the embedded chains its tests start.

Each test still has a chain of its own; with the same operator (and deployment
settings) that chain's deployment is a copy of the first one's instead of thirteen
transactions run again (``wattx.settlement.embedded.deploy_embedded``).
"""

from __future__ import annotations

from pathlib import Path

from wattx.private_files import read_or_create_secret
from wattx.services.onchain.embedded_journal import OPERATOR_KEY_FILE
from wattx.settlement.keys import new_signer

WORKER_OPERATOR = new_signer()


def use_worker_operator(data_dir: Path) -> None:
    """A service on ``data_dir`` signs as :data:`WORKER_OPERATOR` (unless it has a key)."""
    read_or_create_secret(data_dir / OPERATOR_KEY_FILE, WORKER_OPERATOR.private_key.hex())
