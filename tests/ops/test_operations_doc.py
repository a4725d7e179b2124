"""Every ``sh`` block of docs/operations.md runs, in order, as an operator would type it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from protocol.config import parse_signed
from protocol.encoding import loads_strict

from .conftest import PASSPHRASE

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_the_operator_guide_runs(tmp_path: Path) -> None:
    blocks = sh_blocks(DOC.read_text("utf-8"))
    assert len(blocks) >= 10
    shutil.copytree(ROOT / "ops" / "examples", tmp_path / "ops" / "examples")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TONGBAN_ROOT_PASSPHRASE": PASSPHRASE,
    }
    env.pop("TONGBAN_FED_DIR", None)
    # `tongban ops …` without importing the node and hub applications on every call (the
    # installed entry point itself is run by test_push.py).
    run_ops = "from ops.cli import ops; ops(prog_name='tongban ops')"
    python = sys.executable
    shim = f'tongban() {{ [ "$1" = ops ] || return 2; shift; "{python}" -c "{run_ops}" "$@"; }}\n'
    script = "set -euo pipefail\n" + shim + "\n".join(blocks)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    signed = parse_signed(loads_strict((tmp_path / "federation" / "current.json").read_bytes()))
    assert signed.serial == 3  # section 9 signs once more
    config = signed.config
    assert [r.member for r in config.revocations] == ["210102001002"]
    assert [k.valid_until is None for k in config.members["210102001001"].keys] == [False, True]
    reset = config.staff["hp-mzj-li"].password_reset
    assert reset is not None and (tmp_path / "hp-mzj-li.password").stat().st_mode & 0o077 == 0
    assert "210106" in signed.config.members and "2104" in signed.config.peers
    assert "+ 210106 铁西区政务服务中心" in result.stdout
