from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from wattx.cli.chain import register
from wattx.settlement.artifacts import load_artifact
from wattx.settlement.deployment import Deployment
from wattx.settlement.errors import DeploymentFileError
from wattx.settlement.jsonrpc import JsonRpcChain

from .conftest import funded_anvil_signer


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.mark.anvil
def test_deploy_writes_a_deployment_the_chain_connects_to(anvil_url: str, tmp_path: Path) -> None:
    operator = funded_anvil_signer(anvil_url)
    key_file = tmp_path / "operator.key"
    key_file.write_text(operator.private_key.hex())
    out = tmp_path / "deployment.json"
    result = CliRunner().invoke(
        _app(),
        ["chain", "deploy", "--rpc-url", anvil_url, "--key-file", str(key_file), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    deployment = Deployment.load(out)
    assert deployment.operator == operator.address
    assert "addresses and ABIs" in result.output
    abis = json.loads(out.read_text())["abis"]
    assert abis["Marketplace"] == list(load_artifact("Marketplace").abi)
    chain = JsonRpcChain.connect(anvil_url, deployment, operator)
    assert chain.view("Marketplace", "fee_account") == operator.address
    assert chain.view("EnergyToken", "minter") == deployment.contracts["MeterOracle"]


def test_deploy_reports_a_missing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATTX_OPERATOR_KEY", raising=False)
    monkeypatch.delenv("WATTX_OPERATOR_KEY_FILE", raising=False)
    result = CliRunner().invoke(_app(), ["chain", "deploy", "--rpc-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "operator_key_missing" in result.output


def test_deployment_file_round_trip_and_validation(tmp_path: Path) -> None:
    addresses = {n: f"0x{i:040x}" for i, n in enumerate(
        ["Registry", "EnergyToken", "CreditToken", "MeterOracle", "Marketplace", "Governance",
         "NetworkIncentives"], start=1)}  # fmt: skip
    deployment = Deployment(1, 2, f"0x{9:040x}", f"0x{10:040x}", addresses)
    path = tmp_path / "d.json"
    deployment.save(path)
    assert Deployment.load(path) == Deployment.from_json(deployment.to_json())
    path.write_text('{"chain_id": 1}')
    with pytest.raises(DeploymentFileError):
        Deployment.load(path)
    with pytest.raises(DeploymentFileError):
        Deployment.load(tmp_path / "missing.json")
