"""``tongban node init``/``migrate``/``passwd``/``run``: the operator's commands."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import node
from protocol.enrol import parse_enrolment_text
from protocol.keys import KeyPair

from .conftest import STATION_ID, init_station
from .helpers import ROOT, free_port, signed_config


def test_init_creates_the_data_dir_and_prints_a_verifiable_enrolment(tmp_path: Path) -> None:
    init = init_station(tmp_path / "st", "http://127.0.0.1:8400/")
    data = init.data
    key = KeyPair.from_file_bytes(data.key_file.read_bytes())
    if os.name == "posix":
        assert stat.S_IMODE(data.key_file.stat().st_mode) == 0o600
    station = json.loads(data.station_file.read_text(encoding="utf-8"))
    assert station["id"] == STATION_ID
    assert station["parent_url"] == "http://127.0.0.1:8400/"
    assert station["root_keys"] == [ROOT.public.to_text()]
    assert data.db_file.is_file() and data.blob_dir.is_dir()

    line = next(x for x in init.output.splitlines() if x.startswith("TBENROL1."))
    enrolment = parse_enrolment_text(line)  # verifies the proof-of-possession signature
    assert enrolment.id == STATION_ID
    assert enrolment.public == key.public
    assert enrolment.role == "station"
    assert enrolment.name == "测试村便民服务站"
    assert len(init.password) >= 12
    assert init.output.count(init.password) == 1  # printed once


def test_init_with_a_signed_config_names_the_parent(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    # A config that does not list this station's (not yet existing) key: enrolment pending.
    config.write_text(json.dumps(signed_config(ROOT.public).to_dict()), encoding="utf-8")
    result = CliRunner().invoke(
        node,
        [
            "init",
            "--id",
            "210102001002",
            "--parent",
            "http://127.0.0.1:8400/",
            "--data",
            str(tmp_path / "st"),
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("TBENROL1."))
    assert parse_enrolment_text(line).parent == "210102001"
    assert "联邦配置 第 1 版" in result.output


def test_init_refuses_to_overwrite_a_station(tmp_path: Path) -> None:
    init_station(tmp_path / "st", "http://127.0.0.1:8400/")
    key_before = (tmp_path / "st" / "member.key").read_bytes()
    result = CliRunner().invoke(
        node,
        [
            "init",
            "--id",
            STATION_ID,
            "--parent",
            "http://127.0.0.1:8400/",
            "--data",
            str(tmp_path / "st"),
            "--root",
            ROOT.public.to_text(),
        ],
    )
    assert result.exit_code != 0
    assert "refusing to overwrite" in result.output
    assert (tmp_path / "st" / "member.key").read_bytes() == key_before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--id", STATION_ID, "--parent", "http://h/"], "--root"),
        (["--id", "21010", "--parent", "http://h/", "--root", ROOT.public.to_text()], "21010"),
        (["--id", STATION_ID, "--parent", "ftp://h/", "--root", ROOT.public.to_text()], "http"),
        (["--id", STATION_ID, "--parent", "http://h/", "--root", "not-a-key"], "--root"),
    ],
)
def test_init_rejects_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(node, ["init", "--data", str(tmp_path / "st"), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "st" / "member.key").exists()


def test_migrate_and_passwd(tmp_path: Path) -> None:
    init = init_station(tmp_path / "st", "http://127.0.0.1:8400/")
    result = CliRunner().invoke(node, ["migrate", "--data", str(init.data.root)])
    assert result.exit_code == 0 and "up to date" in result.output
    result = CliRunner().invoke(node, ["passwd", "--data", str(init.data.root)])
    assert result.exit_code == 0, result.output
    assert init.password not in result.output
    result = CliRunner().invoke(node, ["passwd", "--data", str(init.data.root), "--username", "x"])
    assert result.exit_code != 0


def test_node_run_serves_on_localhost(tmp_path: Path) -> None:
    """The real command in its own process: migrates, listens, answers, stops on SIGTERM."""
    init = init_station(tmp_path / "st", f"http://127.0.0.1:{free_port()}/")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ops.main import main; main()",
            "node",
            "run",
            "--data",
            str(init.data.root),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.loads(r.read()) == {"status": "ok", "member": STATION_ID}
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "node run did not come up"
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            assert "窗口人员登录" in r.read().decode("utf-8")  # / → the login page
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    if os.name == "posix":
        assert proc.returncode == 0, err
    assert f"listening on http://127.0.0.1:{port}/" in out
    assert "node.stopped" in err
