"""Compiled contracts: ABI and bytecode, compiled from ``contracts/``.

Every contract pins ``# pragma evm-version cancun``, so the bytecode is the
same whether it runs embedded or on a JSON-RPC node.

Compiling all of them takes seconds, and every ``wattx up`` needs them, so
the output is kept on disk (``$XDG_CACHE_HOME/wattx/contracts``, else
``~/.cache/wattx/contracts``) under a key made of the compiler version and
the text of every source file: any edit to any contract, or another compiler,
means a fresh compile. A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

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
    """``contracts/<name>.vy`` (with its imports) as ABI and deploy bytecode."""
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}")
    cached = _cache_file(name)
    # A missing or damaged cache file means compiling again.
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        stored = json.loads(cached.read_text())
        return ContractArtifact(name, tuple(stored["abi"]), bytes.fromhex(stored["bytecode"]))
    artifact = _compile(name)
    _store(cached, {"abi": list(artifact.abi), "bytecode": artifact.bytecode.hex()})
    return artifact


def _compile(name: str) -> ContractArtifact:
    # Imported here: the compiler takes a second to import, and a cache hit needs none of it.
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    bundle = FilesystemInputBundle([CONTRACTS_DIR])
    source = bundle.load_file(CONTRACTS_DIR / f"{name}.vy")
    out = compile_from_file_input(source, input_bundle=bundle, output_formats=["abi", "bytecode"])
    return ContractArtifact(
        name=name,
        abi=tuple(out["abi"]),
        bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")),
    )


@cache
def _sources_digest() -> str:
    digest = hashlib.sha256(version("vyper").encode())
    for path in sorted(CONTRACTS_DIR.rglob("*.vy")):
        digest.update(path.relative_to(CONTRACTS_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def _cache_file(name: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "wattx" / "contracts" / _sources_digest() / f"{name}.json"


def _store(path: Path, content: dict[str, Any]) -> None:
    """Write atomically (a concurrent reader sees the old file or the new, never half)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as out:
            json.dump(content, out)
        Path(out.name).replace(path)
    except OSError:
        return


def load_all_artifacts() -> dict[str, ContractArtifact]:
    return {name: load_artifact(name) for name in CONTRACT_NAMES}
