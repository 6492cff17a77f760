"""Chaos suite: faults injected into a real `wattx up` while a community trades, invariants checked.

The driver starts everything as real processes in a private work directory:
``wattx up`` (free port, short epochs), a private ``redis-server`` (the bus and
rate limits), and per backend either SQLite with the embedded chain or a
private PostgreSQL instance (``initdb``/``postgres`` from the Debian package)
with an anvil node (``--state FILE``). Through the API it provisions an
operator, sellers with signed meters and buyers with credit; meters post
readings every epoch so sellers get minted tokens, and sellers and buyers
place orders for the next open epoch.

Each run of the suite is one fault cycle: trade for an epoch or two, inject one
fault at a random point of the epoch, wait for the service to recover (ready,
and an order acknowledged again), trade another epoch, then pause the traffic,
let settlement catch up and check the invariants:

(a) every order acknowledged with a 2xx is still there, with the trades its
    acknowledgement listed;
(b) every ended epoch settled on chain was settled exactly once, with the root
    of the service's outbox row and of the trades the service lists;
(c) every participant's free + locked balance in the service equals the
    chain's Marketplace balance, for credit and for energy (the effect of
    epochs not yet settled on chain is taken out of the service's side);
(d) at the end, no ended epoch with trades is left unsettled.

The chain is read by the driver itself: the anvil node over JSON-RPC, or, for
the embedded chain, a replay of a copy of the service's chain journal (what a
restart would see).

Fault kinds: ``kill9`` (``kill -9`` of ``wattx up``, restarted), ``chain_window``
(the service kills itself between a chain transaction and its database record:
needs the fault points of ``WATTX_FAULT_INJECT``, ``wattx.services.faults``; skipped
when the service has none), ``journal_tear`` (embedded chain: ``kill -9``, a torn last
line appended to the chain journal, two restarts), ``disk_full`` (SQLite: the
data directory is a size-limited tmpfs mounted by the suite, which needs root;
a ballast file fills it for a window, then is deleted), ``redis_outage``,
``postgres_outage`` and ``chain_outage`` (the server is killed and started
again after an outage). ``--clients N`` sets how many clients place orders
at once (4 by default).

    .venv/bin/python bench/chaos.py --runs 10 --backend sqlite
    .venv/bin/python bench/chaos.py --runs 10 --backend postgres --json
    .venv/bin/python bench/chaos.py --runs 8 --backend postgres --faults kill9 --clients 24
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import errno
import glob
import importlib
import json
import os
import pwd
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from wattx.domain import EpochSchedule, Trade
from wattx.metering.parsing import reading_batch_to_json
from wattx.metering.signing import MeterSigner
from wattx.settlement.batch import build_epoch_batch
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deployment import Deployment
from wattx.settlement.keys import new_signer
from wattx.sim.runner.client import API, PAGE_SIZE, Answer, ServiceClient, Session
from wattx.sim.runner.errors import ServiceRequestError
from wattx.sim.runner.meters import meter_seed
from wattx.sim.runner.provision import gather_limited

REPO = Path(__file__).resolve().parents[1]
ANVIL = REPO / "node_modules" / ".bin" / "anvil"
ANVIL_OPERATOR_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
"""The first development account of anvil's default mnemonic: funded on every fresh node."""
PASSWORD = "chaos-password-1"
OPERATOR_EMAIL = "operator@chaos.wattx.test"
HOOK_ENV = "WATTX_FAULT_INJECT"
"""The environment variable (``wattx.services.faults``, docs/operations.md) that makes
the service die between a chain transaction and its database record; the
``chain_window`` kind needs it."""
HOOK_DEFAULT = "after_chain_tx:mint,after_chain_tx:settle"
TORN_FRAGMENT = '{"to":"0x5fbdb2315678afecb367f032d93f642f64180aa3","data":"a9059cbb00'
"""What a crash in the middle of a journal write leaves: the start of a line."""
ENERGY_UNIT = 10**6
"""Energy-token base units per Wh."""
DISK_MB = 256
"""Size of the tmpfs that holds the data directory when ``disk_full`` is planned."""
BALLAST = "chaos-ballast.bin"

KINDS: dict[str, tuple[str, ...]] = {
    "sqlite": ("kill9", "chain_window", "journal_tear", "disk_full", "redis_outage"),
    "postgres": ("kill9", "chain_window", "postgres_outage", "redis_outage", "chain_outage"),
}
INVARIANTS = (
    ("orders", "(a) acknowledged orders kept with their trades"),
    ("settlement", "(b) epochs settled once, with the outbox's root"),
    ("credit", "(c) credit: service free+locked = chain"),
    ("energy", "(c) energy: service free+locked = chain"),
    ("unsettled", "(d) ended epochs with unsettled trades at the end"),
)


@dataclass
class ChaosConfig:
    backend: str = "sqlite"
    runs: int = 10
    seed: int = 1
    kinds: tuple[str, ...] | None = None
    epoch_s: int = 10
    gate_lead_s: int = 2
    sellers: int = 3
    buyers: int = 3
    traders: int = 4
    """Clients placing orders at once (``--clients``)."""
    order_pause_s: float = 0.25
    outage_s: tuple[float, float] = (10.0, 15.0)
    chain_outage_s: tuple[float, float] = (3.0, 8.0)
    recover_timeout_s: float = 90.0
    restart_timeout_s: float = 240.0
    settle_timeout_s: float = 40.0
    final_settle_timeout_s: float = 120.0
    hook_value: str = HOOK_DEFAULT
    workdir: Path | None = None
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))


@dataclass
class FaultRecord:
    index: int
    kind: str
    epoch_offset_s: float
    skipped: str | None = None
    survived: bool = False
    restart_s: list[float] = field(default_factory=list)
    recovery_s: float | None = None
    note: str | None = None


@dataclass
class Violation:
    invariant: str
    after: str
    detail: str


@dataclass
class Report:
    backend: str
    seed: int
    clients: int = 4
    faults: list[FaultRecord] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    orders_acknowledged: int = 0
    trades: int = 0
    epochs_settled: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    checks: int = 0
    abandoned: str | None = None
    failed_checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def violation_counts(self) -> dict[str, int]:
        counts = Counter(v.invariant for v in self.violations)
        return {name: counts.get(name, 0) for name, _ in INVARIANTS}

    @property
    def ok(self) -> bool:
        injected = [f for f in self.faults if f.skipped is None]
        return (
            not self.violations
            and not self.abandoned
            and not self.failed_checks
            and all(f.survived for f in injected)
        )


class AbandonedError(RuntimeError):
    """The run cannot go on: the service does not start again."""


# -- processes ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_REPORTS: list[Report] = []
"""Every run's report, so that an interrupted run can still show what it found."""
_STARTED: list[Child] = []
"""Every process the suite started: killed at exit should anything be left running."""


_MOUNTED: list[SmallDisk] = []
"""Every small disk the suite mounted: unmounted at exit should one be left."""


@atexit.register
def _kill_leftovers() -> None:
    for child in _STARTED:
        child.kill()
    for disk in _MOUNTED:
        disk.unmount()


class Child:
    """A process the suite started, in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = argv
        self.log = log
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        env = dict(self.env if self.env is not None else os.environ)
        env.update(extra_env or {})
        with self.log.open("ab") as out:
            out.write(f"--- start {datetime.now(UTC).isoformat()}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        _STARTED.append(self)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """``kill -9`` of the process and everything in its group."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)


def _wait_until(probe: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout_s:.0f} s")
        time.sleep(0.1)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class SmallDisk:
    """A size-limited tmpfs for the service's data directory, and a ballast file that
    fills it (the ``disk_full`` fault). Mounting needs root (``CAP_SYS_ADMIN``)."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.size_mb = size_mb
        self.ballast = path / BALLAST
        self.mounted = False

    def mount(self) -> str | None:
        """Mount it; ``None``, or why it cannot be mounted."""
        if os.geteuid() != 0:
            return "mounting a size-limited tmpfs needs root"
        self.path.mkdir(parents=True, exist_ok=True)
        options = f"size={self.size_mb}m,mode=0700"
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "wattx-chaos", str(self.path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            return f"mount -t tmpfs failed: {done.stderr.strip() or done.returncode}"
        self.mounted = True
        _MOUNTED.append(self)
        return None

    def fill(self) -> int:
        """Write the ballast until the disk is full; the bytes written."""
        written = 0
        with self.ballast.open("ab", buffering=0) as out:
            for size in (1 << 20, 1 << 12, 1 << 9):
                block = bytes(size)
                while True:
                    try:
                        count = out.write(block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
                    written += count or 0
        return written

    def drain(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.mounted = False


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        data = workdir / "redis"
        data.mkdir()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(data)]
        self.child = Child("redis", argv, workdir / "redis.log")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.child.start()
        _wait_until(lambda: _port_open(self.port), 20, "redis-server")

    def stop(self) -> None:
        self.child.kill()


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def _version_key(path: str) -> int:
    part = Path(path).parts[4]
    return int(part) if part.isdigit() else 0


class Postgres:
    """A private PostgreSQL instance; as root it runs as the ``postgres`` user."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.bin = _postgres_bin()
        # Outside the work dir: pytest's temporary dirs are closed to other users.
        self.root = Path(tempfile.mkdtemp(prefix="wattx-chaos-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        initdb = [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres"]
        subprocess.run(
            [*self.as_user, *initdb, "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        argv = [*self.as_user, str(self.bin / "postgres"), "-D", str(self.data)]
        argv += ["-p", str(self.port), "-k", str(self.root), "-c", "listen_addresses=127.0.0.1"]
        argv += ["-c", "max_connections=100"]
        self.child = Child("postgres", argv, workdir / "postgres.log")
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/wattx"

    def start(self) -> None:
        self.child.start()
        _wait_until(self._ready, 60, "postgres")

    def _ready(self) -> bool:
        done = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
        )
        return done.returncode == 0

    def create_database(self) -> None:
        subprocess.run(
            [
                str(self.bin / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "wattx",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        self.child.kill()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Anvil:
    def __init__(self, workdir: Path) -> None:
        if not ANVIL.exists():
            raise RuntimeError(f"anvil missing at {ANVIL}: run `make setup`")
        self.port = free_port()
        self.state = workdir / "anvil-state.json"
        argv = [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--state", str(self.state), "--state-interval", "1"]
        argv += ["--gas-limit", "1000000000", "--code-size-limit", "100000", "--silent"]
        self.child = Child("anvil", argv, workdir / "anvil.log")
        self.url = f"http://127.0.0.1:{self.port}"
        self.good_state = workdir / "anvil-state.good.json"
        self.repairs = 0
        """How often a kill tore the state file and the copy taken before it was used."""

    def start(self) -> None:
        # anvil rewrites its state file in place every second: a kill -9 in the middle
        # leaves it torn, and anvil then refuses to start. The node comes back from
        # the copy taken just before the kill instead (losing its last blocks, as a
        # crashed node would).
        self.mend_state()
        self.child.start()
        _wait_until(self._ready, 30, "anvil")

    def mend_state(self) -> None:
        """A torn state file is replaced by the copy :meth:`stop` took before its kill."""
        if self.state.exists() and not _parses(self.state) and _parses(self.good_state):
            shutil.copyfile(self.good_state, self.state)
            self.repairs += 1

    def _ready(self) -> bool:
        try:
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
            return httpx.post(self.url, json=body, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        # anvil may rewrite the file while it is copied: only a copy that parses
        # itself replaces the last good one (atomically).
        candidate = self.good_state.with_suffix(".candidate")
        if self.state.exists():
            shutil.copyfile(self.state, candidate)
            if _parses(candidate):
                candidate.replace(self.good_state)
            else:
                candidate.unlink()
        self.child.kill()


def _parses(path: Path) -> bool:
    """Whether ``path`` holds a whole JSON document (not torn by a kill)."""
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True


class Service:
    """``wattx up`` as a subprocess of the suite."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.env = env
        self.data_dir = Path(env["WATTX_DATA_DIR"])
        self.url = f"http://127.0.0.1:{env['WATTX_PORT']}"
        argv = [sys.executable, "-m", "wattx.cli.main", "up"]
        self.child = Child("wattx", argv, workdir / "wattx.log", env)
        self.started_at = 0.0

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "wattx.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"wattx {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
        return done.stdout

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        self.started_at = time.monotonic()
        self.child.start(extra_env)

    async def wait_ready(self, timeout_s: float) -> float | None:
        """Seconds from start to ``/readyz`` 200, or ``None`` (timeout, or it died)."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                if not self.child.alive():
                    return None
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.url}/readyz")).status_code == 200:
                        return time.monotonic() - self.started_at
                await asyncio.sleep(0.1)
        return None

    def kill(self) -> None:
        self.child.kill()


# -- the community -----------------------------------------------------------


@dataclass
class Participant:
    name: str
    side: str
    session: Session
    meter: MeterSigner | None = None


@dataclass
class AckedOrder:
    order_id: str
    owner: str
    trades: dict[str, dict[str, Any]]


def _trade(item: dict[str, Any]) -> Trade:
    return Trade(
        id=item["id"],
        epoch_id=item["epoch_id"],
        zone=item["zone"],
        buy_order_id=item["buy_order_id"],
        sell_order_id=item["sell_order_id"],
        buyer=item["buyer"],
        seller=item["seller"],
        buyer_zone=item["buyer_zone"],
        seller_zone=item["seller_zone"],
        qty_wh=item["qty_wh"],
        delivered_wh=item["delivered_wh"],
        price=item["price"],
        value=item["value"],
        buyer_fee=item["buyer_fee"],
        seller_fee=item["seller_fee"],
        wheeling_fee=item["wheeling_fee"],
        seq=item["seq"],
        executed_at=datetime.fromisoformat(item["executed_at"]) if item["executed_at"] else None,
    )


@dataclass
class ChainState:
    """What the chain holds, as the driver read it."""

    roots: dict[int, bytes]
    settled: set[int]
    """Epochs the Marketplace says are settled (``epoch_settled``)."""
    settled_events: Counter[int]
    """``EpochSettled`` events per epoch (a node that lost blocks lost their events)."""
    balances: dict[str, tuple[int, int]]
    """address → (energy free+locked in base units, credit free+locked)."""
    fee_account: str


class ChainReader:
    """Reads the chain without the service: the node over JSON-RPC, or a replay of a copy
    of the embedded chain's journal."""

    def __init__(self, data_dir: Path, rpc_url: str | None) -> None:
        self.data_dir = data_dir
        self.rpc_url = rpc_url

    def read(self, epochs: list[int], addresses: list[str]) -> ChainState:
        if self.rpc_url is None:
            with tempfile.TemporaryDirectory(prefix="wattx-chaos-chain-") as tmp:
                for name in ("chain-journal.jsonl", "operator.key"):
                    if (self.data_dir / name).exists():
                        shutil.copy(self.data_dir / name, Path(tmp) / name)
                from wattx.services.onchain.embedded_journal import open_durable_embedded_chain

                chain = open_durable_embedded_chain(Path(tmp), None)
                return self._read(chain, epochs, addresses)
        from wattx.settlement.jsonrpc import JsonRpcChain

        deployment = Deployment.load(self.data_dir / "deployment.json")
        return self._read(
            JsonRpcChain.connect(self.rpc_url, deployment, new_signer()), epochs, addresses
        )

    @staticmethod
    def _read(chain: ContractChain, epochs: list[int], addresses: list[str]) -> ChainState:
        settled: Counter[int] = Counter()
        for event in chain.events_since(0):
            if event.name == "EpochSettled":
                settled[int(event.args["epoch_id"])] += 1
        known = sorted(set(epochs) | set(settled))
        roots = {e: chain.epoch_root(e) for e in known}
        done = {e for e in known if chain.is_settled(e)}
        balances = {}
        for address in addresses:
            b = chain.balances(address)
            balances[address] = (
                b.free_energy + b.locked_energy,
                b.free_credit + b.locked_credit,
            )
        return ChainState(roots, done, settled, balances, chain.deployment.fee_account)


# -- the driver --------------------------------------------------------------


class Chaos:
    def __init__(self, cfg: ChaosConfig, workdir: Path) -> None:
        if cfg.backend not in KINDS:
            raise ValueError(f"unknown backend {cfg.backend!r}")
        self.cfg = cfg
        self.workdir = workdir
        self.began = time.monotonic()
        self.rng = random.Random(cfg.seed)
        self.order_rng = random.Random(f"orders|{cfg.seed}")
        self.schedule = EpochSchedule(cfg.epoch_s, cfg.gate_lead_s)
        self.report = Report(cfg.backend, cfg.seed, cfg.traders)
        _REPORTS.append(self.report)
        self.answers: Counter[str] = Counter()
        self.acked: list[AckedOrder] = []
        self.participants: list[Participant] = []
        self.traffic = asyncio.Event()
        self.in_flight = 0
        self.hook_supported = False
        self.redis: Redis | None = None
        self.postgres: Postgres | None = None
        self.anvil: Anvil | None = None
        self.service: Service | None = None
        self.reader: ChainReader | None = None
        self.disk: SmallDisk | None = None
        self.disk_error: str | None = None
        self.http: httpx.AsyncClient | None = None
        self.client: ServiceClient | None = None
        self.operator: Session | None = None
        self.bounds = (0, 0)

    def log(self, line: str) -> None:
        elapsed = time.monotonic() - self.began
        self.cfg.log(f"[chaos {self.cfg.backend} {elapsed:6.0f} s] {line}")

    # -- set-up and tear-down --

    def start_infrastructure(self) -> None:
        self.redis = Redis(self.workdir)
        self.redis.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATTX_")}
        env.update(
            WATTX_DATA_DIR=str(self.workdir / "data"),
            WATTX_PORT=str(free_port()),
            WATTX_LOG_LEVEL="WARNING",
            WATTX_REDIS_URL=self.redis.url,
            WATTX_EPOCH_LENGTH_S=str(self.cfg.epoch_s),
            WATTX_GATE_CLOSURE_LEAD_S=str(self.cfg.gate_lead_s),
            WATTX_CLOCK_TICK_S="0.5",
            WATTX_SETTLEMENT_TICK_S="1",
            WATTX_SETTLEMENT_RETRY_S="2",
            WATTX_MINT_THRESHOLD_WH="10",
            WATTX_RATE_LIMIT_AUTH_PER_WINDOW="100000",
            WATTX_RATE_LIMIT_DEFAULT_PER_WINDOW="100000000",
        )
        if "disk_full" in (self.cfg.kinds or KINDS[self.cfg.backend]):
            disk = SmallDisk(self.workdir / "data", DISK_MB)
            self.disk_error = disk.mount()
            self.disk = disk if self.disk_error is None else None
        rpc_url = None
        if self.cfg.backend == "postgres":
            self.postgres = Postgres(self.workdir)
            self.postgres.start()
            self.postgres.create_database()
            env["WATTX_DATABASE_URL"] = self.postgres.url
            self.anvil = Anvil(self.workdir)
            self.anvil.start()
            rpc_url = self.anvil.url
            env["WATTX_CHAIN_RPC_URL"] = rpc_url
            env["WATTX_OPERATOR_KEY"] = ANVIL_OPERATOR_KEY
        self.service = Service(self.workdir, env)
        self.reader = ChainReader(self.service.data_dir, rpc_url)
        self.service.cli("db", "upgrade")
        self.service.cli(
            "admin", "create-operator", "--email", OPERATOR_EMAIL, "--password", PASSWORD
        )
        self.hook_supported = hook_supported()

    def stop_everything(self) -> None:
        for child in (self.service, self.anvil, self.redis):
            if child is not None:
                with contextlib.suppress(Exception):
                    child.kill() if isinstance(child, Service) else child.stop()
        if self.postgres is not None:
            with contextlib.suppress(Exception):
                self.postgres.remove()
        if self.disk is not None:
            self.disk.unmount()

    async def provision(self) -> None:
        client = self._client()
        self.operator = await client.login(OPERATOR_EMAIL, PASSWORD)
        zone = await client.require("GET", f"{API}/zones/main", self.operator)
        bands = zone["tariff"]
        self.bounds = (max(b["feed_in"] for b in bands), min(b["retail"] for b in bands))
        tag = uuid.uuid4().hex[:6]

        async def enrol(index: int) -> Participant:
            side = "sell" if index < self.cfg.sellers else "buy"
            name = f"{side}{index}"
            email = f"{name}.{tag}@chaos.wattx.test"
            role = "prosumer" if side == "sell" else "consumer"
            user_id = await client.sign_up(email, PASSWORD, name, role)
            await client.require(
                "PATCH", f"{API}/admin/users/{user_id}", self.operator, json={"status": "admitted"}
            )
            await client.require(
                "POST",
                f"{API}/admin/users/{user_id}/credit-deposits",
                self.operator,
                json={"amount": 10**11},
            )
            session = await client.login(email, PASSWORD)
            meter = None
            if side == "sell":
                seed = meter_seed(self.cfg.seed, name, tag)
                probe = MeterSigner("probe", seed)
                row = await client.require(
                    "POST",
                    f"{API}/meters",
                    session,
                    json={
                        "serial": f"CHAOS-{tag}-{name}",
                        "zone_id": "main",
                        "rated_capacity_w": 10**6,
                        "public_key": probe.public_key.hex(),
                    },
                )
                await client.require("POST", f"{API}/meters/{row['id']}/activate", self.operator)
                meter = MeterSigner(row["id"], seed)
            return Participant(name, side, session, meter)

        count = self.cfg.sellers + self.cfg.buyers
        self.participants = await gather_limited([lambda i=i: enrol(i) for i in range(count)], 4)

    def _client(self) -> ServiceClient:
        assert self.client is not None
        return self.client

    def _service(self) -> Service:
        assert self.service is not None
        return self.service

    # -- traffic --

    async def _guarded(self, call: Awaitable[Answer]) -> Answer | None:
        self.in_flight += 1
        try:
            return await call
        except (httpx.HTTPError, ValueError) as exc:
            self.answers["no_response" if isinstance(exc, httpx.TransportError) else "error"] += 1
            return None
        finally:
            self.in_flight -= 1

    async def place_order(self, who: Participant) -> Answer | None:
        floor, ceiling = self.bounds
        mid = (floor + ceiling) // 2
        price = max(floor, min(ceiling, mid + self.order_rng.randint(-8_000, 8_000)))
        body = {
            "side": who.side,
            "qty_wh": self.order_rng.randint(20, 120),
            "zone": "main",
            "limit_price": price,
            "client_order_id": uuid.uuid4().hex,
        }
        answer = await self._guarded(
            self._client().call("POST", f"{API}/orders", who.session, json=body)
        )
        if answer is None:
            return None
        if answer.ok:
            self.answers["2xx"] += 1
            order = answer.body["order"]
            trades = {t["id"]: t for t in answer.body["trades"]}
            self.acked.append(AckedOrder(order["id"], order["owner"], trades))
        else:
            self.answers[f"{answer.status} {answer.code}"] += 1
        return answer

    async def trader(self) -> None:
        while True:
            await self.traffic.wait()
            answer = await self.place_order(self.order_rng.choice(self.participants))
            # A service that does not answer is not hammered while it restarts.
            await asyncio.sleep(self.cfg.order_pause_s if answer is not None else 1.0)

    async def meters(self) -> None:
        """Each seller's meter posts a signed reading just after every epoch boundary."""
        rng = random.Random(f"meters|{self.cfg.seed}")
        while True:
            now = time.time()
            await asyncio.sleep(self.cfg.epoch_s - now % self.cfg.epoch_s + 0.3)
            if not self.traffic.is_set():
                continue
            stamp = datetime.now(UTC).replace(microsecond=0)
            for who in self.participants:
                if who.meter is None:
                    continue
                reading = who.meter.record(stamp, exported_wh=rng.randint(150, 400))
                batch = reading_batch_to_json(who.meter.sign([reading]))
                path = f"{API}/meters/{who.meter.meter_id}/readings"
                answer = await self._guarded(self._client().call("POST", path, json=batch))
                if answer is not None and not answer.ok:
                    self.answers[f"reading {answer.status} {answer.code}"] += 1

    async def pause_traffic(self) -> None:
        self.traffic.clear()
        deadline = time.monotonic() + 120
        while self.in_flight:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)

    # -- faults --

    async def wait_epoch_point(self, offset_s: float) -> None:
        now = time.time()
        into = now % self.cfg.epoch_s
        delay = offset_s - into if offset_s > into else self.cfg.epoch_s - into + offset_s
        await asyncio.sleep(delay)

    async def restart(self, record: FaultRecord, extra_env: dict[str, str] | None = None) -> bool:
        service = self._service()
        service.start(extra_env)
        took = await service.wait_ready(self.cfg.restart_timeout_s)
        if took is None:
            record.note = "the service did not become ready after a restart"
            return False
        record.restart_s.append(round(took, 2))
        return True

    async def fault_kill9(self, record: FaultRecord) -> bool:
        self._service().kill()
        await asyncio.sleep(self.rng.uniform(0.2, 2.0))
        return await self.restart(record)

    async def fault_chain_window(self, record: FaultRecord) -> bool:
        service = self._service()
        service.kill()
        if not await self.restart(record, {HOOK_ENV: self.cfg.hook_value}):
            return False
        deadline = time.monotonic() + 6 * self.cfg.epoch_s
        while service.child.alive():
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        if service.child.alive():
            record.note = "the hook did not fire within 6 epochs"
            service.kill()
        return await self.restart(record)

    async def fault_journal_tear(self, record: FaultRecord) -> bool:
        """A crash in the middle of a journal write, then two restarts.

        Should the service not start again, the fragment is taken out of the
        journal by hand (as an operator would) so that the run can go on; the
        fault counts as not survived.
        """
        service = self._service()
        service.kill()
        journal = service.data_dir / "chain-journal.jsonl"
        with journal.open("a") as out:
            out.write(TORN_FRAGMENT)
        survived = await self.restart(record)
        if survived:
            await asyncio.sleep(self.cfg.epoch_s)
            service.kill()
            survived = await self.restart(record)
        if survived:
            return True
        service.kill()
        text = journal.read_text()
        if TORN_FRAGMENT in text:
            journal.write_text(text.replace(TORN_FRAGMENT, "", 1))
            record.note = f"{record.note}; the torn fragment was taken out of the journal by hand"
            await self.restart(FaultRecord(record.index, record.kind, record.epoch_offset_s))
        return False

    async def fault_disk_full(self, record: FaultRecord) -> bool:
        """The data directory's disk fills up for a window while the clients trade.

        Survived when no answer in the window was a 5xx other than 503 (or no answer
        at all), and ``/readyz`` reported not ready whenever a request was refused
        for storage. The invariants after it check that the chain holds nothing the
        database did not record.
        """
        assert self.disk is not None
        service = self._service()
        before = Counter(self.answers)
        filled = await asyncio.to_thread(self.disk.fill)
        span = self.rng.uniform(*self.cfg.outage_s)
        polls: Counter[str] = Counter()
        deadline = time.monotonic() + span
        async with httpx.AsyncClient(timeout=5) as http:
            while time.monotonic() < deadline:
                try:
                    answer = await http.get(f"{service.url}/readyz")
                    body = answer.json()
                    polls[
                        "200"
                        if answer.status_code == 200
                        else f"{answer.status_code} storage_writable="
                        f"{str(body.get('storage_writable')).lower()}"
                    ] += 1
                except (httpx.HTTPError, ValueError):
                    polls["no_response"] += 1
                await asyncio.sleep(0.5)
        await asyncio.to_thread(self.disk.drain)
        during = Counter(self.answers)
        during.subtract(before)
        seen = {k: v for k, v in sorted(during.items()) if v > 0}
        refused = sum(v for k, v in seen.items() if _status(k) == "503")
        wrong = {
            k: v
            for k, v in seen.items()
            if k in ("no_response", "error") or (_status(k).startswith("5") and _status(k) != "503")
        }
        not_ready = sum(v for k, v in polls.items() if k != "200")
        record.note = (
            f"{filled // 2**20} MiB ballast for {span:.1f} s; answers "
            + ", ".join(f"{k} {v}" for k, v in seen.items())
            + "; /readyz "
            + ", ".join(f"{k} {v}" for k, v in sorted(polls.items()))
        )
        if wrong:
            record.note += "; answers other than 2xx, 4xx or 503 while the disk was full"
            return False
        if refused and not not_ready:
            record.note += "; requests were refused for storage but /readyz stayed 200"
            return False
        return service.child.alive()

    async def _outage(
        self, stop: Callable[[], None], start: Callable[[], None], span: float
    ) -> None:
        stop()
        await asyncio.sleep(span)
        await asyncio.to_thread(start)

    async def fault_redis_outage(self, record: FaultRecord) -> bool:
        assert self.redis is not None
        await self._outage(self.redis.stop, self.redis.start, self.rng.uniform(*self.cfg.outage_s))
        return True

    async def fault_postgres_outage(self, record: FaultRecord) -> bool:
        assert self.postgres is not None
        pg = self.postgres
        await self._outage(pg.stop, pg.start, self.rng.uniform(*self.cfg.outage_s))
        return True

    async def fault_chain_outage(self, record: FaultRecord) -> bool:
        assert self.anvil is not None
        anvil = self.anvil
        repairs = anvil.repairs
        await self._outage(anvil.stop, anvil.start, self.rng.uniform(*self.cfg.chain_outage_s))
        if anvil.repairs > repairs:
            record.note = (
                "the kill tore anvil's state file; the node started from the copy "
                "taken just before the kill"
            )
        return True

    async def recovered(self, record: FaultRecord, fault_end: float) -> bool:
        """Ready again, and an order acknowledged, within the recovery timeout."""
        service = self._service()
        deadline = fault_end + self.cfg.recover_timeout_s
        probe = next(p for p in self.participants if p.side == "buy")
        while time.monotonic() < deadline:
            if not service.child.alive():
                record.note = "the service died"
                return False
            answer = await self.place_order(probe)
            if answer is not None and answer.ok:
                record.recovery_s = round(time.monotonic() - fault_end, 2)
                if await self.live_events(probe):
                    return True
                record.note = "live events (SSE) did not come back"
                return False
            await asyncio.sleep(0.5)
        record.note = record.note or "no order acknowledged within the recovery timeout"
        return False

    async def live_events(self, probe: Participant) -> bool:
        """An operator's event stream shows a new order's event, in one of three tries."""
        for _ in range(3):
            if await self._event_seen(probe):
                return True
        return False

    async def _event_seen(self, probe: Participant) -> bool:
        """One try: open the operator's stream, place an order, see its event within 15 s."""
        client = self._client()
        assert self.operator is not None
        lines: list[str] = []
        arrived = asyncio.Event()

        async def read(response: httpx.Response) -> None:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    lines.append(line)
                    arrived.set()

        try:
            # A cheap call first, so that an expired access token is refreshed.
            await client.call("GET", f"{API}/users/me", self.operator)
            headers = {"Authorization": f"Bearer {self.operator.access_token}"}
            async with client.http.stream(
                "GET", f"{API}/events", headers=headers, timeout=httpx.Timeout(20, read=None)
            ) as response:
                if response.status_code != 200:
                    return False
                reader = asyncio.create_task(read(response))
                try:
                    await asyncio.sleep(0.5)
                    answer = await self.place_order(probe)
                    if answer is None or not answer.ok:
                        return False
                    # The event may come before the answer: lines are kept from the start.
                    order_id = answer.body["order"]["id"]
                    deadline = time.monotonic() + 15
                    while True:
                        arrived.clear()
                        if any(order_id in line for line in lines):
                            return True
                        left = deadline - time.monotonic()
                        if left <= 0 or reader.done():
                            return False
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(arrived.wait(), left)
                finally:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
        except httpx.HTTPError:
            return False

    async def revive(self) -> None:
        """Start again a server that died outside a planned fault, and note it."""
        for server in (self.redis, self.postgres, self.anvil):
            if server is not None and not server.child.alive():
                self.report.notes.append(f"{server.child.name} died outside a fault; restarted")
                self.log(self.report.notes[-1])
                await asyncio.to_thread(server.start)

    async def fault_cycle(self, index: int, kind: str) -> None:
        await self.revive()
        offset = round(self.rng.uniform(0, self.cfg.epoch_s), 2)
        record = FaultRecord(index, kind, offset)
        self.report.faults.append(record)
        if kind == "chain_window" and not self.hook_supported:
            record.skipped = (
                f"the service has no fault points for `{HOOK_ENV}`: "
                "the kill between a chain transaction and its record is not injected"
            )
            self.log(f"fault {index} {kind}: skipped: {record.skipped}")
            return
        if kind == "disk_full" and self.disk is None:
            record.skipped = f"the data directory cannot be put on a small disk: {self.disk_error}"
            self.log(f"fault {index} {kind}: skipped: {record.skipped}")
            return
        self.traffic.set()
        await asyncio.sleep(self.rng.uniform(1.0, 2.0) * self.cfg.epoch_s)
        await self.wait_epoch_point(offset)
        self.log(f"fault {index}: {kind} at {offset:.1f} s into the epoch")
        inject = getattr(self, f"fault_{kind}")
        came_back = await inject(record)
        fault_end = time.monotonic()
        record.survived = came_back and await self.recovered(record, fault_end)
        if not record.survived:
            self.log(f"fault {index}: not survived ({record.note}); restarting the service")
            self._service().kill()
            if not await self.restart(FaultRecord(index, kind, offset)):
                raise AbandonedError(f"after fault {index} ({kind}) the service does not start")
        await asyncio.sleep(self.cfg.epoch_s)
        await self.check(f"fault {index} ({kind})", final=False)

    # -- invariants --

    async def _all_pages(self, path: str, params: dict[str, str | int] | None = None) -> list[Any]:
        items: list[Any] = []
        offset = 0
        while True:
            query: dict[str, str | int] = {**(params or {}), "limit": PAGE_SIZE, "offset": offset}
            body = await self._client().require("GET", path, self.operator, params=query)
            items.extend(body["items"])
            if len(body["items"]) < PAGE_SIZE:
                return items
            offset += PAGE_SIZE

    def _current_epoch(self) -> int:
        return self.schedule.epoch_id_at(datetime.now(UTC))

    async def _settled_by(self, deadline: float) -> list[dict[str, Any]]:
        """The service's trades, once every ended epoch's are settled (or the deadline passed)."""
        while True:
            trades: list[dict[str, Any]] = await self._all_pages(f"{API}/trades")
            current = self._current_epoch()
            waiting = [
                t for t in trades if t["epoch_id"] < current and t["settlement_status"] != "settled"
            ]
            if not waiting or time.monotonic() > deadline:
                return trades
            await asyncio.sleep(1.0)

    async def check(self, after: str, *, final: bool) -> None:
        """Pause the traffic, let settlement catch up, then check every invariant.

        A check the service does not let finish (a request refused or not answered
        within a minute) is reported as such, and the run goes on.
        """
        await self.revive()
        last_epoch = self.schedule.first_open_epoch(datetime.now(UTC))
        await self.pause_traffic()
        self.report.checks += 1
        try:
            await self._check(after, last_epoch, final=final)
        except (httpx.HTTPError, ServiceRequestError) as exc:
            where = ""
            with contextlib.suppress(RuntimeError):
                request = exc.request if isinstance(exc, httpx.HTTPError) else None
                where = f" on {request.method} {request.url.path}" if request else ""
            self.report.failed_checks.append(
                f"check after {after}: {type(exc).__name__}{where} {exc}".strip()
            )
            self.log(f"  CHECK FAILED: {self.report.failed_checks[-1]}")
        finally:
            self.traffic.set()

    async def _check(self, after: str, last_epoch: int, *, final: bool) -> None:
        # Every order placed so far is for an epoch that has ended before the checks.
        while True:
            if self._current_epoch() > last_epoch:
                break
            await asyncio.sleep(0.5)
        timeout = self.cfg.final_settle_timeout_s if final else self.cfg.settle_timeout_s
        trades = await self._settled_by(time.monotonic() + timeout)
        violations: list[Violation] = []
        orders = {o["id"]: o for o in await self._all_pages(f"{API}/orders")}
        self._check_orders(after, orders, {t["id"]: t for t in trades}, violations)
        # Balances: a mint may be on its way; a real difference stays.
        for attempt in range(8):
            found: list[Violation] = []
            chain, unsettled = await self._check_chain(after, trades, found, final=final)
            if not [v for v in found if v.invariant in ("credit", "energy")] or attempt == 7:
                break
            await asyncio.sleep(self.cfg.epoch_s / 2)
            trades = await self._all_pages(f"{API}/trades")
        violations += found
        self.report.violations += violations
        self.log(
            f"check after {after}: {len(self.acked)} orders acknowledged, {len(trades)} trades, "
            f"{len(chain.settled)} epochs settled on chain, {len(unsettled)} unsettled, "
            f"{len(violations)} violations"
        )
        for v in violations:
            self.log(f"  VIOLATION {v.invariant}: {v.detail}")
        self.report.orders_acknowledged = len(self.acked)
        self.report.trades = len(trades)
        self.report.epochs_settled = len(chain.settled)

    def _check_orders(
        self,
        after: str,
        orders: dict[str, dict[str, Any]],
        trades: dict[str, dict[str, Any]],
        violations: list[Violation],
    ) -> None:
        for acked in self.acked:
            if acked.order_id not in orders:
                violations.append(
                    Violation("orders", after, f"order {acked.order_id} acknowledged, now missing")
                )
                continue
            for trade_id, trade in acked.trades.items():
                kept = trades.get(trade_id)
                # The answer showed the participant's own side only (the counterparty is
                # null for a participant); the operator's list shows both.
                same = kept is not None and all(
                    kept[k] == trade[k]
                    for k in ("qty_wh", "price", "buyer", "seller", "epoch_id")
                    if trade[k] is not None
                )
                if not same:
                    violations.append(
                        Violation(
                            "orders",
                            after,
                            f"trade {trade_id} of order {acked.order_id} "
                            f"{'missing' if kept is None else 'changed'}",
                        )
                    )

    async def _addresses(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """user id → (chain address, the service's wallet)."""
        found = {}
        for who in self.participants:
            wallet = await self._client().require("GET", f"{API}/wallet", who.session)
            if wallet["chain"] is not None:
                found[who.session.user_id] = (wallet["chain"]["address"], wallet)
        return found

    async def _check_chain(
        self, after: str, trades: list[dict[str, Any]], found: list[Violation], *, final: bool
    ) -> tuple[ChainState, list[int]]:
        wallets = await self._addresses()
        outbox = {e["epoch_id"]: e for e in await self._all_pages(f"{API}/ledger/epochs")}
        current = self._current_epoch()
        by_epoch: dict[int, list[Trade]] = {}
        for item in trades:
            by_epoch.setdefault(item["epoch_id"], []).append(_trade(item))
        assert self.reader is not None
        chain = await asyncio.to_thread(
            self.reader.read, sorted(by_epoch), [a for a, _ in wallets.values()]
        )
        book = {user: address for user, (address, _) in wallets.items()}
        unsettled: list[int] = []
        pending_energy: Counter[str] = Counter()
        pending_credit: Counter[str] = Counter()
        for epoch_id, epoch_trades in sorted(by_epoch.items()):
            events = chain.settled_events[epoch_id]
            settled = epoch_id in chain.settled
            if events > 1:
                found.append(
                    Violation("settlement", after, f"epoch {epoch_id} settled {events} times")
                )
            try:
                batch = build_epoch_batch(epoch_id, epoch_trades, book, chain.fee_account)
            except Exception as exc:
                found.append(Violation("settlement", after, f"epoch {epoch_id}: {exc}"))
                continue
            root = "0x" + chain.roots.get(epoch_id, bytes(32)).hex()
            row = outbox.get(epoch_id)
            if settled:
                if row is None or row["merkle_root"] != root:
                    found.append(
                        Violation(
                            "settlement",
                            after,
                            f"epoch {epoch_id}: chain root {root[:12]}… but outbox root "
                            f"{row['merkle_root'][:12] + '…' if row else 'none'}",
                        )
                    )
                if root != "0x" + batch.merkle_root.hex():
                    found.append(
                        Violation(
                            "settlement",
                            after,
                            f"epoch {epoch_id}: chain root differs from the listed trades' root",
                        )
                    )
                continue
            if row is not None and row["status"] == "confirmed":
                found.append(
                    Violation(
                        "settlement",
                        after,
                        f"epoch {epoch_id} confirmed in the outbox ({row['tx_hash']}) "
                        "but not settled on chain",
                    )
                )
            for delta in batch.deltas:
                pending_energy[delta.address] += delta.energy
                pending_credit[delta.address] += delta.credit
            if epoch_id < current:
                unsettled.append(epoch_id)
                if final:
                    status = row["status"] if row else "no outbox row"
                    error = f", {row['last_error']}" if row and row["last_error"] else ""
                    found.append(
                        Violation(
                            "unsettled",
                            after,
                            f"epoch {epoch_id} ({len(epoch_trades)} trades) not settled: "
                            f"{status}{error}",
                        )
                    )
        for epoch_id in sorted(set(chain.settled_events) - set(by_epoch)):
            found.append(
                Violation("settlement", after, f"epoch {epoch_id} settled on chain, no trades")
            )
        for user, (address, wallet) in sorted(wallets.items()):
            on_chain_energy, on_chain_credit = chain.balances[address]
            service_energy = (wallet["energy"]["free"] + wallet["energy"]["locked"]) * ENERGY_UNIT
            service_credit = wallet["credit"]["free"] + wallet["credit"]["locked"]
            expected_energy = service_energy - pending_energy[address]
            expected_credit = service_credit - pending_credit[address]
            if expected_energy != on_chain_energy:
                diff = (expected_energy - on_chain_energy) / ENERGY_UNIT
                found.append(
                    Violation(
                        "energy",
                        after,
                        f"{user}: service {expected_energy // ENERGY_UNIT} Wh, chain "
                        f"{on_chain_energy // ENERGY_UNIT} Wh (service {diff:+.0f} Wh)",
                    )
                )
            if expected_credit != on_chain_credit:
                found.append(
                    Violation(
                        "credit",
                        after,
                        f"{user}: service {expected_credit}, chain {on_chain_credit} "
                        f"(service {expected_credit - on_chain_credit:+d})",
                    )
                )
        return chain, unsettled

    # -- the whole run --

    def plan(self) -> list[str]:
        """The runs' fault kinds: the chosen ones (default: all of the backend's that this
        service supports), each cycle in a seeded random order."""
        kinds = list(self.cfg.kinds or KINDS[self.cfg.backend])
        unknown = set(kinds) - set(KINDS[self.cfg.backend])
        if unknown:
            raise ValueError(f"fault kinds {sorted(unknown)} do not apply to {self.cfg.backend}")
        if self.cfg.kinds is None and not self.hook_supported:
            # Asked for by name, it is kept and each run of it reports why it was skipped.
            kinds.remove("chain_window")
            self.report.notes.append(
                f"chain_window left out: this service has no fault points for `{HOOK_ENV}` "
                "(wattx config show), so the kill between a chain transaction and its "
                "record cannot be injected"
            )
        if self.cfg.kinds is None and "disk_full" in kinds and self.disk is None:
            kinds.remove("disk_full")
            self.report.notes.append(
                f"disk_full left out: the data directory cannot be put on a small disk "
                f"({self.disk_error})"
            )
        order: list[str] = []
        while len(order) < self.cfg.runs:
            cycle = kinds[:]
            self.rng.shuffle(cycle)
            order += cycle
        return order[: self.cfg.runs]

    async def run(self) -> Report:
        await asyncio.to_thread(self.start_infrastructure)
        plan = self.plan()
        service = self._service()
        service.start()
        if await service.wait_ready(self.cfg.restart_timeout_s) is None:
            raise RuntimeError(f"wattx up did not become ready; see {service.child.log}")
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
            self.http = http
            self.client = ServiceClient(http)
            await self.provision()
            self.log(
                f"{len(self.participants)} participants; faults planned: {', '.join(plan)}"
                + ("" if self.hook_supported else f" (no fault points for {HOOK_ENV})")
            )
            tasks = [asyncio.create_task(self.trader()) for _ in range(self.cfg.traders)]
            tasks.append(asyncio.create_task(self.meters()))
            try:
                self.traffic.set()
                # Sellers trade only minted tokens: the first mint needs an ended epoch.
                await asyncio.sleep(2 * self.cfg.epoch_s)
                for index, kind in enumerate(plan):
                    await self.fault_cycle(index, kind)
                await asyncio.sleep(self.cfg.epoch_s)
                await self.check("the end", final=True)
            except (AbandonedError, ServiceRequestError, httpx.HTTPError) as exc:
                # The run cannot go on (the service no longer starts or answers the
                # checks): what was found so far is reported, and the run fails.
                self.report.abandoned = f"{type(exc).__name__}: {exc}"
                self.log(f"run abandoned: {self.report.abandoned}")
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        self.report.answers = dict(sorted(self.answers.items()))
        return self.report


def _status(answer_key: str) -> str:
    """The status of an answer counter's key (``"503 storage_unavailable"``,
    ``"reading 500 internal"``, ``"2xx"``)."""
    return answer_key.removeprefix("reading ").split(" ", 1)[0]


def hook_supported() -> bool:
    """Whether this service has the fault points that ``WATTX_FAULT_INJECT`` names."""
    try:
        faults = importlib.import_module("wattx.services.faults")
    except ImportError:
        return False
    return bool(getattr(faults, "FAULT_POINTS", None))


async def run_chaos(cfg: ChaosConfig) -> Report:
    """Run the suite; every process it started is stopped, whatever happens."""
    with _workdir(cfg.workdir) as workdir:
        chaos = Chaos(cfg, workdir)
        try:
            return await chaos.run()
        finally:
            await asyncio.to_thread(chaos.stop_everything)


@contextlib.contextmanager
def _workdir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="wattx-chaos-") as tmp:
        yield Path(tmp)


# -- output --------------------------------------------------------------------


def table(reports: list[Report]) -> str:
    lines = []
    for report in reports:
        head = (
            f"{'fault kind':<16} {'injected':>8} {'survived':>8} "
            f"{'restart s':>16} {'recovery s':>16}"
        )
        title = f"backend {report.backend}, seed {report.seed}, {report.clients} clients"
        lines += [title, head, "-" * len(head)]
        kinds = sorted({f.kind for f in report.faults})
        for kind in kinds:
            done = [f for f in report.faults if f.kind == kind and f.skipped is None]
            skipped = [f for f in report.faults if f.kind == kind and f.skipped is not None]
            restarts = [s for f in done for s in f.restart_s]
            recoveries = [f.recovery_s for f in done if f.recovery_s is not None]
            lines.append(
                f"{kind:<16} {len(done):>8} {sum(f.survived for f in done):>8} "
                f"{_spread(restarts):>16} {_spread(recoveries):>16}"
                + (f"  ({len(skipped)} skipped)" if skipped else "")
            )
        lines.append("")
        for name, title in INVARIANTS:
            lines.append(f"{title:<52} {report.violation_counts()[name]:>5} violations")
        lines.append(
            f"orders acknowledged {report.orders_acknowledged}, trades {report.trades}, "
            f"epochs settled on chain {report.epochs_settled}, checks {report.checks}"
        )
        lines.append("answers: " + ", ".join(f"{k} {v}" for k, v in report.answers.items()))
        for f in report.faults:
            if f.skipped:
                lines.append(f"skipped fault {f.index} ({f.kind}): {f.skipped}")
            elif not f.survived or f.note:
                lines.append(f"fault {f.index} ({f.kind}): {f.note}")
        for v in report.violations:
            lines.append(f"violation {v.invariant} after {v.after}: {v.detail}")
        lines += [f"CHECK FAILED: {failed}" for failed in report.failed_checks]
        if report.abandoned:
            lines.append(f"RUN ABANDONED: {report.abandoned}")
        lines += [f"note: {note}" for note in report.notes]
        lines.append("")
    return "\n".join(lines)


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="fault cycles per backend")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--faults", help="comma-separated fault kinds (default: all of the backend)"
    )
    parser.add_argument("--epoch-s", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4, help="clients placing orders at once")
    parser.add_argument("--hook-value", default=HOOK_DEFAULT, help="WATTX_FAULT_INJECT value")
    parser.add_argument("--workdir", type=Path, help="keep logs and data here (default: temporary)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    # A plain `kill` stops the run like Ctrl-C: every process it started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.clients < 1:
        parser.error("--clients must be at least 1")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    reports = []
    for backend in backends:
        kinds = tuple(args.faults.split(",")) if args.faults else None
        if kinds:
            kinds = tuple(k for k in kinds if k in KINDS[backend]) or None
        cfg = ChaosConfig(
            backend=backend,
            runs=args.runs,
            seed=args.seed,
            kinds=kinds,
            epoch_s=args.epoch_s,
            traders=args.clients,
            hook_value=args.hook_value,
            workdir=args.workdir / backend if args.workdir else None,
        )
        try:
            reports.append(asyncio.run(run_chaos(cfg)))
        except (RuntimeError, ValueError) as exc:
            print(f"chaos: {exc}", file=sys.stderr)
            if _REPORTS and _REPORTS[-1].backend == backend:
                # What the run found before it could not go on.
                _REPORTS[-1].abandoned = str(exc)
                print(table(_REPORTS[-1:]), file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("chaos: interrupted; every process it started was stopped", file=sys.stderr)
            if _REPORTS:
                # What the interrupted run found so far.
                _REPORTS[-1].abandoned = "interrupted"
                print(table(_REPORTS[-1:]), file=sys.stderr)
            sys.exit(130)
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2, default=str))
    else:
        print(table(reports))
    sys.exit(0 if all(r.ok for r in reports) else 1)


if __name__ == "__main__":
    main()
