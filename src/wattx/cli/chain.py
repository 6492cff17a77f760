"""``wattx chain …``: deploy the settlement contracts to a JSON-RPC node.

The embedded chain needs no command: it deploys itself when the service starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wattx.domain.errors import DomainError


def deploy(
    rpc_url: Annotated[str, typer.Option(help="JSON-RPC endpoint of the EVM node.")],
    out: Annotated[
        Path, typer.Option(help="Where to write the contract addresses and ABIs.")
    ] = Path("deployment.json"),
    key_file: Annotated[
        Path | None,
        typer.Option(help="Operator key file (hex). Default: WATTX_OPERATOR_KEY(_FILE)."),
    ] = None,
    fee_account: Annotated[
        str | None, typer.Option(help="Address that receives fees and losses. Default: operator.")
    ] = None,
    voting_period: Annotated[int, typer.Option(help="Governance voting period, seconds.")] = 3
    * 24
    * 3600,
    timelock: Annotated[int, typer.Option(help="Governance timelock, seconds.")] = 24 * 3600,
    quorum_wh: Annotated[
        int, typer.Option(help="Governance quorum, Wh of generation.")
    ] = 1_000_000,
) -> None:
    """Deploy and wire every contract, then write their addresses and ABIs to OUT."""
    # Imported here so `wattx --help` does not load the compiler and web3.
    from wattx.settlement.deploy import DeploySettings
    from wattx.settlement.jsonrpc import JsonRpcChain
    from wattx.settlement.keys import operator_signer

    try:
        operator = operator_signer(key_file=key_file)
        chain = JsonRpcChain.deploy(
            rpc_url,
            operator,
            fee_account,
            DeploySettings(
                voting_period_seconds=voting_period, timelock_seconds=timelock, quorum_wh=quorum_wh
            ),
        )
    except DomainError as exc:
        typer.echo(f"error [{exc.code}]: {exc.detail}", err=True)
        raise typer.Exit(code=1) from None
    chain.deployment.save(out)
    for name, address in chain.deployment.contracts.items():
        typer.echo(f"{name:<18} {address}")
    typer.echo(f"wrote {out} (addresses and ABIs)")


def register(app: typer.Typer) -> None:
    """Add the ``chain`` command group to the ``wattx`` app."""
    chain_app = typer.Typer(help="Settlement contracts on an EVM chain.", no_args_is_help=True)
    chain_app.command("deploy")(deploy)
    app.add_typer(chain_app, name="chain")
