"""A private PostgreSQL cluster for one test, so it can be restarted (or crashed) under load
without touching the machine's shared server.

``initdb`` into a temporary directory and ``pg_ctl`` on a free port with a private socket
directory; as root the server runs as the ``postgres`` user (``runuser``). Without the
binaries the test skips (fails in CI, see :func:`tests.conftest.need_service`).
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import asyncpg

from ops.launch import free_port
from tests.conftest import need_service


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """``start()``, ``crash_restart()``, ``stop()``; ``url`` for asyncpg, ``database()``."""

    def __init__(self) -> None:
        bindir = _binaries()
        if bindir is None:
            need_service("PostgreSQL binaries", "no /usr/lib/postgresql/*/bin/initdb")
        assert bindir is not None
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="tb-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                need_service("PostgreSQL", "running as root and there is no postgres user")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    async def _run(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._as,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed:\n{out.decode(errors='replace')}")

    async def start(self) -> None:
        if not self.data.exists():
            await self._run(
                str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                "-U", "postgres", "--no-sync", "-E", "UTF8",
            )  # fmt: skip
        # fsync off: the crashes here are process crashes (SIGKILL, immediate shutdown),
        # which the OS page cache survives; it spares the shared machine's disk.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200"
        )
        await self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    async def crash_restart(self) -> None:
        """Stop the server the hard way (``-m immediate``: no checkpoint, crash recovery on
        start, every client connection cut) and start it again."""
        await self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
        )
        await self.start()

    async def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            await self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
            )
        shutil.rmtree(self.root, ignore_errors=True)

    async def database(self, name: str) -> str:
        """A new database; its SQLAlchemy URL."""
        conn = await asyncpg.connect(self.url, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    async def fetch(self, name: str, sql: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.url.rsplit("/", 1)[0] + f"/{name}", timeout=10)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()
