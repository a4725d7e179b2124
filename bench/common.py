"""Shared pieces: a district federation on a fresh PostgreSQL database, simulated stations
(own keys and chains, enrolled straight into the draft before signing), timing and /proc."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ops.federation import FederationDir, approve_member
from ops.launch import CITY_DEPTS, DISTRICT_DEPTS, LocalFederation, Member, free_port
from protocol.case import CHINA_TIME
from protocol.enrol import Enrolment
from protocol.event import Event
from protocol.keys import KeyPair
from tests.integration.harness import fresh_database

DISTRICT = "210102"
MATTER = "HP-WJJ-ZS-02"  # 诊所备案, 和平区卫生健康局 (ops/examples/catalog.yaml)
AUTHORITY = f"{DISTRICT}:wjj"
REVIEWER = ("hp-wjj-01", "王审核", "审核员口令-2026")
Progress = Callable[[str], None]


@dataclass
class Result:
    """One benchmark's outcome: the headline ratio(s), raw numbers, and notes."""

    id: str
    title: str
    figures: dict[str, float] = field(default_factory=dict)
    target: str = ""
    met: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "figures": self.figures,
            "target": self.target,
            "met": self.met,
            "raw": self.raw,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
            "quick": QUICK[0],
        }


QUICK = [False]  # set by __main__ before running
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def village_id(n: int) -> str:
    """The n-th (0-based) illustrative village code under 和平区: 999 villages per township."""
    return f"{DISTRICT}{n // 999 + 1:03d}{n % 999 + 1:03d}"


def now_ts() -> str:
    return datetime.now(CHINA_TIME).isoformat(timespec="seconds")


@dataclass
class SimStation:
    """A simulated window: its own key and hash chain, events made with the real protocol code."""

    id: str
    key: KeyPair
    seq: int = 0
    prev: str | None = None
    cases: int = 0

    @classmethod
    def new(cls, member_id: str) -> SimStation:
        return cls(member_id, KeyPair.generate(secrets.token_bytes(32)))

    def submit(self, day: str = "20261123", note_bytes: int = 0) -> Event:
        """A signed ``case.submitted`` of 诊所备案 to 和平区卫生健康局, next in the chain."""
        self.cases += 1
        self.seq += 1
        body = submitted_body(self.id, self.cases, note_bytes)
        event = Event.create(
            self.key,
            author=self.id,
            seq=self.seq,
            prev=self.prev,
            ts=now_ts(),
            type="case.submitted",
            case=f"{self.id}-{day}-{self.cases:04d}",
            to=[AUTHORITY],
            body=body,
        )
        self.prev = event.id
        return event


def submitted_body(author: str, serial: int, note_bytes: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {
        "matter": MATTER,
        "applicant": {
            "name": f"申请人{serial}",
            "id_type": "111",
            "id_masked": "2101**********1234",
            "id_hash": hashlib.sha256(f"{author}/{serial}".encode()).hexdigest(),
        },
        "location": author,
        "pickup": author,
        "materials": [
            {"id": "form", "name": "诊所备案信息表", "mode": "provided", "blobs": []},
            {"id": "licence", "name": "营业执照", "mode": "provided", "blobs": []},
            {"id": "doctors", "name": "执业医师资格证及执业证书", "mode": "provided", "blobs": []},
            {"id": "layout", "name": "诊所平面布局图", "mode": "provided", "blobs": []},
            {"id": "rules", "name": "诊所规章制度", "mode": "provided", "blobs": []},
        ],
        "fee_fen": 0,
    }
    if note_bytes:
        body["note"] = "备注" * (note_bytes // 6)
    return body


def enrol_stations(fed: LocalFederation, stations: list[SimStation]) -> None:
    """Approve every simulated station into the draft with the operator's ``approve_member``.

    Each approval runs against a small draft (the city and district hubs only) so that 2,000
    approvals do not deep-copy a growing draft 2,000 times; the new member entries are then
    added to the real draft, which ``config sign`` validates as usual."""
    fdir = FederationDir(fed.fed_dir)
    draft = fdir.load_draft()
    at = datetime.now(CHINA_TIME)
    small = {**draft, "members": [m for m in draft["members"] if m["id"] in ("2101", DISTRICT)]}
    added: list[dict[str, Any]] = []
    for st in stations:
        enrolment = Enrolment(
            id=st.id,
            name=f"模拟便民服务站 {st.id}",
            role="station",
            parent=DISTRICT,
            endpoint=None,
            public=st.key.public,
            created=at.isoformat(timespec="seconds"),
        )
        after, _ = approve_member(small, enrolment, at, parent=DISTRICT)
        added.extend(m for m in after["members"] if m["id"] == st.id)
    draft["members"] = sorted(draft["members"] + added, key=lambda m: m["id"])
    fdir.save_draft(draft)


@dataclass
class District:
    fed: LocalFederation
    hub: Member
    db: str


@contextlib.asynccontextmanager
async def district(root: Path, *, start: bool = True) -> AsyncIterator[District]:
    """沈阳 with the 和平区 hub on a fresh PostgreSQL database and one reviewer; the city hub is
    enrolled but not run. ``start``: run the hub and publish the catalog (signs the config)."""
    db, drop = await fresh_database()
    fed = LocalFederation(root)
    try:
        await fed.create()
        city = await fed.add_hub("2101", "沈阳市政务服务中心", None, CITY_DEPTS, port=free_port())
        hub = await fed.add_hub(
            DISTRICT, "和平区政务服务中心", city.url, DISTRICT_DEPTS, port=free_port(), db=db
        )
        await fed.add_staff(REVIEWER[0], REVIEWER[1], DISTRICT, "wjj", "acceptor", "reviewer")
        if start:
            await hub.proc.start()
            await fed.publish()
            await fed.set_password(hub, REVIEWER[0], REVIEWER[2])
        yield District(fed, hub, db)
    finally:
        await fed.stop_all()
        await drop()


def pg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg", "postgresql")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS VmHWM) of a process from /proc/<pid>/status."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return rss, hwm


def pid_of(member: Member) -> int:
    assert member.proc.proc is not None
    return member.proc.proc.pid


def ed25519_verifications_per_second(seconds: float = 1.0) -> float:
    """Raw Ed25519 verifications/s of one core with the protocol's own key class."""
    st = SimStation.new(village_id(0))
    events = [st.submit() for _ in range(64)]
    key = st.key.public
    pairs = [(e.sig.val, e.signing_bytes) for e in events]
    n = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for sig, msg in pairs:
            key.verify(sig, msg)
        n += len(pairs)
    return n / (time.perf_counter() - started)


PROFILE = [False]  # set by __main__ (--profile): py-spy the hub during the measured phase
PYSPY_RATE = int(os.environ.get("TONGBAN_PYSPY_RATE", "250"))  # samples per second


class Profiler:
    """``py-spy record`` of one process (folded stacks), started and stopped around a phase."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.out = out
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Profiler:
        spy = shutil.which("py-spy") or shutil.which(
            "py-spy", path=str(Path(sys.executable).parent)
        )
        if PROFILE[0] and spy:
            self.proc = await asyncio.create_subprocess_exec(
                spy, "record", "--pid", str(self.pid), "--rate", str(PYSPY_RATE), "--format", "raw",
                "--output", str(self.out), "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(1.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            await self.proc.wait()

    def top(self, n: int = 12) -> list[tuple[str, float]]:
        """Share of samples whose stack contains each function (inclusive), largest first."""
        if not self.out.exists():
            return []
        counts: dict[str, int] = {}
        total = 0
        for line in self.out.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, num = line.rpartition(" ")
            if not num.isdigit():
                continue
            k = int(num)
            total += k
            for frame in set(stack.split(";")):
                counts[frame] = counts.get(frame, 0) + k
        if not total:
            return []
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        interesting = [(f, c / total) for f, c in ranked if "(hub/" in f or "(protocol/" in f]
        return [(f, round(share, 3)) for f, share in interesting[:n]]
