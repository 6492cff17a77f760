"""What the service loads when a process starts: not what only some of its paths need.

Every ``wattx`` process (``up``, ``demo``, each CLI command) pays its imports at start.
scipy's optimiser plans a battery's day (``wattx.devices.scheduling.dayahead``) and
costs about 0.4 s of CPU to import, so it is loaded when a plan is first made
(``tests/devices/scheduling`` makes plans).

Every ``wattx`` command (``--help`` too) imports every area's commands to list them; the
market engine's numpy and solver and the settlement batch's Ethereum ABI codec (about 0.4 s
of CPU together, half of ``wattx --help``) are loaded by the commands that use them.
"""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(statement: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{statement}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return set(done.stdout.split())


def test_importing_the_service_leaves_scipy_out() -> None:
    loaded = _loaded_after("import wattx.api.app, wattx.cli.main")
    assert "wattx.devices.scheduling.dayahead" in loaded
    assert not {name for name in loaded if name == "scipy" or name.startswith("scipy.")}


def test_the_command_line_loads_the_engine_and_the_abi_codec_only_when_used() -> None:
    heavy = {"numpy", "highspy", "eth_abi", "eth_utils", "wattx.market", "wattx.settlement.batch"}
    assert heavy & _loaded_after("import wattx.cli.main") == set()
    used = _loaded_after(
        "from wattx.cli.delivery_demo import demo_delivery\n"
        "from wattx.cli.market_demo import demo_market\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    demo_delivery()\n"
        "    demo_market()"
    )
    assert heavy <= used


def test_the_accounts_service_loads_eth_account_only_to_check_a_wallet_signature() -> None:
    # eth_account brings eth_keyfile and py_ecc's pairing tables: 0.7 s of each `wattx admin`.
    assert "eth_account" not in _loaded_after("import wattx.services.identity.accounts")
    checked = _loaded_after(
        "from wattx.services.identity.wallet_auth import signer_of\n"
        "from wattx.services.errors import WalletSignatureError\n"
        "try:\n"
        "    signer_of('Sign in to wattx', '0x00')\n"
        "except WalletSignatureError:\n"
        "    pass"
    )
    assert "eth_account" in checked
