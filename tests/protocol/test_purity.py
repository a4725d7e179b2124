"""The pure core imports no I/O frameworks and reads no clock, environment or disk."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import protocol

CORE = Path(protocol.__file__).parent
FORBIDDEN_MODULES = ("asyncio", "aiohttp", "sqlalchemy", "apscheduler", "node", "hub", "ops")
# Attribute chains that read the clock, the environment or the disk.
FORBIDDEN_CALLS = {
    "datetime.now",
    "datetime.utcnow",
    "datetime.today",
    "date.today",
    "time.time",
    "time.monotonic",
    "os.environ",
    "os.getenv",
    "os.urandom",
    "open",
    "Path.read_text",
    "Path.read_bytes",
}


def core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "http" not in p.relative_to(CORE).parts)


def test_importing_the_core_loads_no_io_framework() -> None:
    modules = [f"protocol.{p.stem}" for p in core_files() if p.stem != "__init__"]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in ["protocol", *modules])
        + f"bad = [m for m in {FORBIDDEN_MODULES!r} if m in sys.modules]\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"protocol core imports {out.stdout.strip()}"


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def scan(source: str, name: str) -> list[str]:
    """Every forbidden import or clock/env/disk access in ``source``."""
    offenders = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for imported in names:
                if imported.split(".")[0] in (*FORBIDDEN_MODULES, "time", "random", "secrets"):
                    offenders.append(f"{name}: import {imported}")
        if isinstance(node, (ast.Attribute, ast.Name)) and _dotted(node) in FORBIDDEN_CALLS:
            offenders.append(f"{name}:{node.lineno}: {_dotted(node)}")
    return offenders


def test_core_source_reads_no_clock_env_or_disk() -> None:
    offenders = [o for p in core_files() for o in scan(p.read_text(encoding="utf-8"), p.name)]
    assert offenders == []


def test_scan_catches_each_kind_of_impurity() -> None:
    sample = (
        "import asyncio\nfrom sqlalchemy import text\nimport time\n"
        "x = datetime.now()\ny = os.environ\nz = open('f')\n"
    )
    found = scan(sample, "bad.py")
    assert sorted(found) == sorted(
        [
            "bad.py: import asyncio",
            "bad.py: import sqlalchemy",
            "bad.py: import time",
            "bad.py:4: datetime.now",
            "bad.py:5: os.environ",
            "bad.py:6: open",
        ]
    )
