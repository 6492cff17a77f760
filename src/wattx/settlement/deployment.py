"""Where the contracts live: the file ``wattx chain deploy`` writes and the service reads.

JSON: ``{"chain_id": 31337, "block_number": 1, "operator": "0x…",
"fee_account": "0x…", "contracts": {"Registry": "0x…", …}, "abis": {"Registry":
[…], …}}``; reading it back needs only the addresses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from wattx.settlement.artifacts import CONTRACT_NAMES, load_artifact
from wattx.settlement.errors import DeploymentFileError


@dataclass(frozen=True, slots=True)
class Deployment:
    chain_id: int
    block_number: int
    operator: str
    fee_account: str
    contracts: Mapping[str, str]

    def address_of(self, contract: str) -> str:
        return self.contracts[contract]

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "block_number": self.block_number,
            "operator": self.operator,
            "fee_account": self.fee_account,
            "contracts": dict(self.contracts),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deployment:
        try:
            contracts = {name: data["contracts"][name] for name in CONTRACT_NAMES}
            addresses = [data["operator"], data["fee_account"], *contracts.values()]
            chain_id, block_number = int(data["chain_id"]), int(data["block_number"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DeploymentFileError(f"deployment lacks or mistypes {exc}") from None
        if not all(isinstance(a, str) and is_address(a) for a in addresses):
            raise DeploymentFileError("deployment holds a value that is not an address")
        return cls(
            chain_id=chain_id,
            block_number=block_number,
            operator=to_checksum_address(data["operator"]),
            fee_account=to_checksum_address(data["fee_account"]),
            contracts={n: to_checksum_address(a) for n, a in contracts.items()},
        )

    def published(self) -> dict[str, Any]:
        """What is published with a deployment: :meth:`to_json` and ``abis``, every
        contract's ABI by name, so a client needs nothing else to call the contracts."""
        abis = {name: list(load_artifact(name).abi) for name in self.contracts}
        return {**self.to_json(), "abis": abis}

    def save(self, path: Path) -> None:
        """Write :meth:`published` (addresses and ABIs); :meth:`load` reads it back."""
        path.write_text(json.dumps(self.published(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DeploymentFileError(f"cannot read deployment file {path}: {exc}") from None
        return cls.from_json(data)
