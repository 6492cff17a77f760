"""Settlement benchmark: gas and wall time to settle one epoch in one transaction.

For epochs of 10, 100, 1,000 and 10,000 trades among 10, 100 and 1,000
accounts, on the embedded chain; and 1,000 trades on anvil through the
JSON-RPC adapter. Accounts are funded once by a funding epoch (the operator
settles energy and credit out to every account), then the cases run one
after another, each as a new epoch. "build" is the off-chain batch (netting + Merkle tree),
"settle" the transaction until its receipt.

    .venv/bin/python bench/settlement.py            # table
    .venv/bin/python bench/settlement.py --json     # JSON
    .venv/bin/python bench/settlement.py --no-anvil
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from eth_utils import keccak

from wattx.domain.trades import Trade
from wattx.settlement.batch import AccountDelta, EpochBatch, build_epoch_batch
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.embedded import EmbeddedChain
from wattx.settlement.jsonrpc import JsonRpcChain
from wattx.settlement.keys import new_signer
from wattx.settlement.merkle import EMPTY_ROOT
from wattx.settlement.port import Asset, MeterMint, Signer
from wattx.units import fee_of, trade_value, wh_to_energy_base_units

ROOT = Path(__file__).resolve().parents[1]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
TRADE_COUNTS = (10, 100, 1_000, 10_000)
ACCOUNT_COUNTS = (10, 100, 1_000)
ENERGY_PER_ACCOUNT_WH = 100_000_000
CREDIT_PER_ACCOUNT = 10**13


def random_trades(epoch_id: int, trades: int, accounts: int, rng: random.Random) -> list[Trade]:
    out = []
    for i in range(trades):
        buyer, seller = rng.sample(range(accounts), 2)
        qty = rng.randint(100, 5_000)
        price = rng.randint(50_000, 300_000)
        value = trade_value(qty, price)
        out.append(
            Trade(
                id=f"e{epoch_id}-t{i}",
                epoch_id=epoch_id,
                zone="a",
                buy_order_id=f"b{i}",
                sell_order_id=f"s{i}",
                buyer=f"a{buyer}",
                seller=f"a{seller}",
                buyer_zone="a",
                seller_zone="a",
                qty_wh=qty,
                delivered_wh=qty - qty // 100,
                price=price,
                value=value,
                buyer_fee=fee_of(value, 25),
                seller_fee=fee_of(value, 25),
                wheeling_fee=trade_value(qty, 5_000),
                seq=i,
            )
        )
    return out


def fund_accounts(chain: ContractChain, operator_key: Signer, addresses: list[str]) -> None:
    """Give every account free energy and credit with one funding epoch."""
    operator = chain.operator_address
    total_wh = ENERGY_PER_ACCOUNT_WH * len(addresses)
    total_credit = CREDIT_PER_ACCOUNT * len(addresses)
    zone, meter = keccak(text="bench-zone"), keccak(text="bench-meter")
    chain.add_zone(zone)
    chain.register_meter(meter, operator, zone, total_wh)
    chain.mint_readings([MeterMint(meter, 1, operator, total_wh)])
    chain.deposit(operator_key, Asset.ENERGY, wh_to_energy_base_units(total_wh))
    chain.mint_credit(operator, total_credit)
    chain.deposit(operator_key, Asset.CREDIT, total_credit)
    deltas = [
        AccountDelta(a, wh_to_energy_base_units(ENERGY_PER_ACCOUNT_WH), CREDIT_PER_ACCOUNT)
        for a in addresses
    ]
    deltas.append(AccountDelta(operator, -wh_to_energy_base_units(total_wh), -total_credit))
    chain.transact(
        "Marketplace", "settle_epoch", 0, EMPTY_ROOT, 0, [d.as_tuple() for d in deltas], 0, 0
    )


def run_case(
    chain: ContractChain, book: dict[str, str], epoch_id: int, trades: int, accounts: int
) -> dict[str, Any]:
    rng = random.Random(epoch_id)
    epoch_trades = random_trades(epoch_id, trades, accounts, rng)
    started = time.perf_counter()
    batch: EpochBatch = build_epoch_batch(
        epoch_id, epoch_trades, book, chain.deployment.fee_account
    )
    built = time.perf_counter()
    result = chain.settle_epoch(batch)
    settled = time.perf_counter()
    return {
        "trades": trades,
        "accounts": accounts,
        "deltas": len(batch.deltas),
        "gas": result.gas_used,
        "gas_per_trade": result.gas_used // trades,
        "build_s": round(built - started, 3),
        "settle_s": round(settled - built, 3),
    }


def bench_chain(
    chain: ContractChain,
    operator: Signer,
    name: str,
    trade_counts: tuple[int, ...],
    epoch_base: int,
) -> list[dict[str, Any]]:
    rows = []
    addresses = [new_signer().address for _ in range(max(ACCOUNT_COUNTS))]
    fund_accounts(chain, operator, addresses)
    epoch_id = epoch_base
    for accounts in ACCOUNT_COUNTS:
        book = {f"a{i}": addresses[i] for i in range(accounts)}
        for trades in trade_counts:
            epoch_id += 1
            # No snapshots: on the embedded chain they would keep storage
            # "dirty" between transactions and understate gas. Balances are
            # ample for every case to run on top of the previous ones.
            row = run_case(chain, book, epoch_id, trades, accounts)
            rows.append({"chain": name, **row})
            print(f"  {name}: {trades} trades / {accounts} accounts done", file=sys.stderr)
    return rows


@contextmanager
def anvil_node() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent",
         "--gas-limit", "1000000000", "--code-size-limit", "100000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.post(
                    url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=2
                )
                break
            except requests.RequestException:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'chain':<9}{'trades':>8}{'accounts':>10}{'deltas':>8}{'gas':>13}"
        f"{'gas/trade':>11}{'build s':>9}{'settle s':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['chain']:<9}{r['trades']:>8}{r['accounts']:>10}{r['deltas']:>8}"
            f"{r['gas']:>13,}{r['gas_per_trade']:>11,}{r['build_s']:>9.3f}{r['settle_s']:>10.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-anvil", action="store_true", help="skip the anvil cases")
    args = parser.parse_args()

    embedded_operator = new_signer()
    rows = bench_chain(
        EmbeddedChain(operator=embedded_operator), embedded_operator, "embedded", TRADE_COUNTS, 100
    )
    if not args.no_anvil:
        with anvil_node() as url:
            operator = new_signer()
            requests.post(
                url,
                json={"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance",
                      "params": [operator.address, hex(10**24)]},
                timeout=5,
            )  # fmt: skip
            chain = JsonRpcChain.deploy(url, operator)
            rows += bench_chain(chain, operator, "anvil", (1_000,), 200)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
