"""Compiled contracts: ABI and bytecode, compiled once per process from ``contracts/``.

Every contract pins ``# pragma evm-version cancun``, so the bytecode is the
same whether it runs embedded or on a JSON-RPC node.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vyper.compiler import compile_from_file_input
from vyper.compiler.input_bundle import FilesystemInputBundle

CONTRACTS_DIR = Path(__file__).parent / "contracts"

CONTRACT_NAMES: tuple[str, ...] = (
    "Registry",
    "EnergyToken",
    "CreditToken",
    "MeterOracle",
    "Marketplace",
    "Governance",
    "NetworkIncentives",
)
"""The deployable contracts, in deployment order."""


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes


@cache
def load_artifact(name: str) -> ContractArtifact:
    """Compile ``contracts/<name>.vy`` (with its imports) to ABI and deploy bytecode."""
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}")
    bundle = FilesystemInputBundle([CONTRACTS_DIR])
    source = bundle.load_file(CONTRACTS_DIR / f"{name}.vy")
    out = compile_from_file_input(source, input_bundle=bundle, output_formats=["abi", "bytecode"])
    return ContractArtifact(
        name=name,
        abi=tuple(out["abi"]),
        bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")),
    )


def load_all_artifacts() -> dict[str, ContractArtifact]:
    return {name: load_artifact(name) for name in CONTRACT_NAMES}
