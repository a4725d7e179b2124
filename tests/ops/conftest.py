"""Helpers for the operator command tests: a CLI runner and enrolment requests from fixed keys.

District codes are real (和平 210102, 铁西 210106, 抚顺 2104); township and village codes
below them are illustrative.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ops.main import tongban
from protocol.enrol import Enrolment, enrolment_text, make_enrolment
from protocol.keys import KeyPair

CST = timezone(timedelta(hours=8))
PASSPHRASE = "正确的口令 correct horse"
EXAMPLES = Path(__file__).resolve().parents[2] / "ops" / "examples"
CITY_DEPTS = ("sfj", "jtj", "gaj", "scjgj", "swj", "rsj")
DISTRICT_DEPTS = ("mzj", "wjj", "scjgj")


def key(name: str) -> KeyPair:
    """The deterministic key pair of a name."""
    return KeyPair.from_seed(hashlib.sha256(name.encode()).digest())


def request(
    member_id: str,
    role: str = "station",
    parent: str | None = None,
    *,
    name: str | None = None,
    endpoint: str | None = None,
    seals: Iterable[str] = (),
    key_name: str | None = None,
) -> str:
    """A signed enrolment request (one TBENROL1 line) made with protocol.enrol."""
    member_key = key(key_name or member_id)
    enrolment = Enrolment(
        id=member_id,
        name=name or f"站点 {member_id}",
        role=role,
        parent=parent,
        endpoint=endpoint,
        public=member_key.public,
        created="2026-11-23T09:00:00+08:00",
        seal_keys={d: key(f"seal {member_id}:{d}").public for d in seals},
    )
    return enrolment_text(make_enrolment(member_key, enrolment))


CITY_HUB = request(
    "2101",
    "hub",
    None,
    name="沈阳市政务服务中心",
    endpoint="http://127.0.0.1:8400/",
    seals=CITY_DEPTS,
)
HEPING_HUB = request(
    "210102",
    "hub",
    "2101",
    name="和平区政务服务中心",
    endpoint="http://127.0.0.1:8401/",
    seals=DISTRICT_DEPTS,
)
VILLAGE_1 = request("210102001001", parent="210102", name="示例社区便民服务站")  # illustrative
VILLAGE_2 = request("210102001002", parent="210102", name="示例村便民服务站")  # illustrative

Run = Callable[..., Result]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The operator's clock, fixed; append or replace [0] to move it."""
    now = [datetime(2026, 11, 23, 10, 0, tzinfo=CST)]
    monkeypatch.setattr("ops.federation.now", lambda: now[0])
    return now


@pytest.fixture
def fed_dir(tmp_path: Path) -> Path:
    return tmp_path / "federation"


@pytest.fixture
def run(fed_dir: Path, clock: list[datetime]) -> Run:
    """Invoke ``tongban ops …`` in-process with --dir set and the passphrase in the env."""
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True, env: dict[str, Any] | None = None, **kw: Any) -> Result:
        environ = {"TONGBAN_ROOT_PASSPHRASE": PASSPHRASE, "TONGBAN_FED_DIR": str(fed_dir)}
        environ.update(env or {})
        result = runner.invoke(tongban, ["ops", *args], env=environ, catch_exceptions=False, **kw)
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code != 0, result.output
        return result

    return invoke


def city_names() -> list[str]:
    names = {
        "sfj": "沈阳市司法局",
        "jtj": "沈阳市交通运输局",
        "gaj": "沈阳市公安局",
        "scjgj": "沈阳市市场监督管理局",
        "swj": "国家税务总局沈阳市税务局",
        "rsj": "沈阳市人力资源和社会保障局",
    }
    return [arg for d, n in names.items() for arg in ("--authority-name", f"{d}={n}")]


@pytest.fixture
def shenyang(run: Run) -> Run:
    """A federation with the city hub, 和平 district hub, two stations and the example catalog."""
    run(
        "federation",
        "init",
        "--city",
        "2101",
        "--name",
        "沈阳市",
        "--hub-enrolment",
        CITY_HUB,
        *city_names(),
    )
    run(
        "member",
        "approve",
        HEPING_HUB,
        "--station",
        "--authority-name",
        "mzj=和平区民政局",
        "--authority-name",
        "wjj=和平区卫生健康局",
        "--authority-name",
        "scjgj=和平区市场监督管理局",
    )
    run("member", "approve", VILLAGE_1)
    run("member", "approve", VILLAGE_2)
    run("catalog", "publish", str(EXAMPLES / "catalog.yaml"))
    return run


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
