"""Smoke check of ``python -m bench``: the quick variant of a cheap benchmark runs end to end
against real processes and writes well-formed JSON (the numbers themselves are not checked)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need_service

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"id", "title", "figures", "target", "met", "raw", "notes", "seconds", "quick", "machine"}


def _postgres_up() -> None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return
    except OSError as exc:
        need_service("PostgreSQL", f"127.0.0.1:5432: {exc}")


def test_quick_bench_writes_results(tmp_path: Path) -> None:
    _postgres_up()
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "B6", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "B6.json").read_text(encoding="utf-8"))
    assert result.keys() >= KEYS
    assert result["id"] == "B6" and result["quick"] is True
    assert result["figures"] and all(v > 0 for v in result["figures"].values())
    assert result["machine"]["nproc"] >= 1
    assert "B6" in proc.stdout and "p50_s_over_1s" in proc.stdout
