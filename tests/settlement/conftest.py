"""Chains for the settlement tests: embedded, and anvil through the JSON-RPC adapter.

The ``chain`` fixture is parametrised over both adapters; each test runs
against a snapshot that is rolled back afterwards, so one deployment per
module serves every test.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DeploySettings
from wattx.settlement.embedded import EmbeddedChain
from wattx.settlement.jsonrpc import JsonRpcChain
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Signer

ANVIL = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "anvil"

TEST_SETTINGS = DeploySettings(voting_period_seconds=3_600, timelock_seconds=600, quorum_wh=1_000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rpc(url: str, method: str, params: list[object]) -> object:
    reply = requests.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=5
    ).json()
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """A fresh anvil on a free loopback port, killed after the session."""
    if not ANVIL.exists():
        pytest.fail(f"anvil binary missing at {ANVIL}: run `npm ci`")
    port = _free_port()
    process = subprocess.Popen(
        [
            str(ANVIL),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--gas-limit", "1000000000",
            "--code-size-limit", "100000",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _rpc(url, "eth_chainId", [])
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("anvil did not start")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def funded_anvil_signer(url: str) -> Signer:
    signer = new_signer()
    _rpc(url, "anvil_setBalance", [signer.address, hex(10**24)])
    return signer


def _chain_for(kind: str, request: pytest.FixtureRequest) -> ContractChain:
    if kind == "embedded":
        return EmbeddedChain(fee_account=new_signer().address, settings=TEST_SETTINGS)
    url = request.getfixturevalue("anvil_url")
    return JsonRpcChain.deploy(url, funded_anvil_signer(url), new_signer().address, TEST_SETTINGS)


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def deployed_chain(request: pytest.FixtureRequest) -> ContractChain:
    return _chain_for(str(request.param), request)


@pytest.fixture
def chain(deployed_chain: ContractChain) -> Iterator[ContractChain]:
    """The module's chain, rolled back to its deployed state after the test."""
    assert isinstance(deployed_chain, EmbeddedChain | JsonRpcChain)
    snapshot = deployed_chain.snapshot()
    try:
        yield deployed_chain
    finally:
        deployed_chain.revert(snapshot)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def embedded_chain() -> EmbeddedChain:
    return EmbeddedChain(fee_account=new_signer().address, settings=TEST_SETTINGS)


@pytest.fixture
def embedded(embedded_chain: EmbeddedChain) -> Iterator[EmbeddedChain]:
    snapshot = embedded_chain.snapshot()
    try:
        yield embedded_chain
    finally:
        embedded_chain.revert(snapshot)
