"""Every runnable command block of README.md and docs/*.md runs as written.

The convention (docs/README.md): a fenced block whose info string is exactly ``sh`` is
runnable; a document's ``sh`` blocks run in order, as one ``bash -euo pipefail`` script, in
an empty directory holding a copy of ``ops/examples/``, with ``tongban`` on ``PATH``.
``console`` and ``text`` blocks are shown, not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.config import parse_signed
from protocol.encoding import loads_strict

from .conftest import PASSPHRASE

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def sh_blocks(text: str) -> list[str]:
    """The runnable blocks of a Markdown text (info string exactly ``sh``)."""
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def run_blocks(doc: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    shutil.copytree(ROOT / "ops" / "examples", cwd / "ops" / "examples")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TONGBAN_ROOT_PASSPHRASE": PASSPHRASE,
    }
    env.pop("TONGBAN_FED_DIR", None)
    script = "set -euo pipefail\n" + "\n".join(sh_blocks(doc.read_text("utf-8")))
    return subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_convention_is_used() -> None:
    # A block marked like a shell block but not `sh` would silently never run.
    for doc in DOCS:
        text = doc.read_text("utf-8")
        for tag in ("bash", "shell", "shell-session", "sh-session"):
            assert f"```{tag}\n" not in text, f"{doc.name}: use `sh` (runs) or `console` (shown)"
    counts = {doc.name: len(sh_blocks(doc.read_text("utf-8"))) for doc in DOCS}
    assert counts["operations.md"] >= 10 and counts["README.md"] >= 1 and counts["deploy.md"] >= 2


RUNNABLE = [d for d in DOCS if sh_blocks(d.read_text("utf-8"))]


@pytest.mark.parametrize("doc", RUNNABLE, ids=[str(d.relative_to(ROOT)) for d in RUNNABLE])
def test_runnable_blocks_run(doc: Path, tmp_path: Path) -> None:
    result = run_blocks(doc, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if doc.name == "operations.md":
        current = tmp_path / "federation" / "current.json"
        signed = parse_signed(loads_strict(current.read_bytes()))
        assert signed.serial == 3  # section 9 signs once more
        config = signed.config
        assert [r.member for r in config.revocations] == ["210102001002"]
        assert [k.valid_until is None for k in config.members["210102001001"].keys] == [False, True]
        reset = config.staff["hp-mzj-li"].password_reset
        assert reset is not None and (tmp_path / "hp-mzj-li.password").stat().st_mode & 0o077 == 0
        assert "210106" in signed.config.members and "2104" in signed.config.peers
        assert "+ 210106 铁西区政务服务中心" in result.stdout
