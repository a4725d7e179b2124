"""``tongban hub init | migrate | passwd | run`` on real data directories."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.config import HubSettings
from hub.core import open_hub
from hub.services import staff
from hub.storage.migrate import head_revision
from ops.main import tongban
from protocol.enrol import parse_enrolment_text
from tests.hub.fed import ACCEPTOR, APPROVER, CITY, DISTRICT, PASSWORD, REVIEWER, Fed, key


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "signed.json"
    path.write_text(json.dumps(Fed().signed_dict(), ensure_ascii=False), "utf-8")
    return path


def init(data: Path, config_file: Path, *extra: str) -> str:
    args = ["hub", "init", "--id", DISTRICT, "--data", str(data), "--config", str(config_file)]
    result = CliRunner().invoke(tongban, [*args, "--authority", "mzj", *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_init_creates_private_keys_and_prints_the_enrolment(
    tmp_path: Path, config_file: Path
) -> None:
    data = tmp_path / "hub"
    output = init(data, config_file, "--parent", "http://city.example/")
    for path in (data / "member.key", data / "seals" / "mzj.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = HubSettings.load(data)
    assert (settings.id, settings.parent_url, settings.db) == (
        DISTRICT,
        "http://city.example/",
        None,
    )
    assert settings.root_keys == (key(f"root {CITY}").public.to_text(),)
    [line] = [ln for ln in output.splitlines() if ln.startswith("TBENROL1.")]
    enrolment = parse_enrolment_text(line)
    assert (enrolment.id, enrolment.role, enrolment.parent) == (DISTRICT, "hub", CITY)
    assert enrolment.public == settings.load_member_key().public
    assert enrolment.seal_keys["mzj"] == settings.load_seal_keys()["mzj"].public
    # A second init never overwrites keys.
    again = CliRunner().invoke(
        tongban,
        ["hub", "init", "--id", DISTRICT, "--data", str(data), "--root", settings.root_keys[0]],
    )
    assert again.exit_code != 0 and "refusing" in again.output


def test_init_needs_a_trust_anchor(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        tongban, ["hub", "init", "--id", DISTRICT, "--data", str(tmp_path / "x")]
    )
    assert result.exit_code != 0 and "--root" in result.output


def test_migrate_and_passwd(tmp_path: Path, config_file: Path) -> None:
    data = tmp_path / "hub"
    init(data, config_file)
    result = CliRunner().invoke(tongban, ["hub", "migrate", "--data", str(data)])
    head = head_revision()
    assert head is not None and result.exit_code == 0 and head in result.output, result.output
    secret = tmp_path / "pw.txt"
    secret.write_text(PASSWORD + "\n", "utf-8")
    result = CliRunner().invoke(
        tongban, ["hub", "passwd", "--data", str(data), "--password-file", str(secret), REVIEWER]
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        tongban, ["hub", "passwd", "--data", str(data), "nobody"], input="x" * 12 + "\n"
    )
    assert result.exit_code != 0 and "not active staff" in result.output

    async def login() -> str | None:
        hub = await open_hub(HubSettings.load(data))
        try:
            _, session = await staff.login(hub, REVIEWER, PASSWORD)
            return session.staff.department
        finally:
            await hub.close()

    assert asyncio.run(login()) == "mzj"
    # Several accounts in one run: a password per line, in order; too few lines set none.
    result = CliRunner().invoke(
        tongban, ["hub", "passwd", "--data", str(data), ACCEPTOR, APPROVER], input="a-1234567890\n"
    )
    assert result.exit_code != 0 and "需要 2 行密码" in result.output
    lines = f"{PASSWORD}-2\n{PASSWORD}-3\n"
    result = CliRunner().invoke(
        tongban, ["hub", "passwd", "--data", str(data), ACCEPTOR, APPROVER], input=lines
    )
    assert result.exit_code == 0 and result.output.count("设置工作台密码") == 2, result.output

    async def both() -> list[str]:
        hub = await open_hub(HubSettings.load(data))
        try:
            return [
                (await staff.login(hub, who, f"{PASSWORD}-{n}"))[1].staff.id
                for who, n in ((ACCEPTOR, 2), (APPROVER, 3))
            ]
        finally:
            await hub.close()

    assert asyncio.run(both()) == [ACCEPTOR, APPROVER]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read()


def test_run_serves_until_stopped(tmp_path: Path, config_file: Path) -> None:
    data = tmp_path / "hub"
    port = _free_port()
    init(data, config_file, "--port", str(port))
    command = [sys.executable, "-c", "from ops.main import main; main()"]
    command += ["hub", "run", "--data", str(data)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _, body = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert process.poll() is None, process.communicate()[0].decode()
                assert time.monotonic() < deadline, "the hub did not start"
                time.sleep(0.1)
        report = json.loads(body)
        assert report["ok"] and report["config_serial"] == 1 and report["config"] == "fresh"
        _, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert b"tongban_hub_blob_bytes_received_total" in metrics
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=10)[0].decode()
    assert "Traceback" not in output, output
