"""``config push``: the real ``tongban`` executable POSTs the signed config to a hub.

The hub's own ``/v1/config`` is built in ``hub/``; here a small aiohttp receiver stands in
for it, reading the body with the protocol's server helpers, and records what arrived.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from protocol.config import parse_signed
from protocol.encoding import loads_strict
from protocol.http.server import RUNNER_KWARGS, read_json_body

from .conftest import PASSPHRASE, Run

TONGBAN = Path(sys.executable).with_name("tongban")

ServerFactory = Callable[..., Awaitable[TestServer]]


def receiver(received: list[Any], answers: list[tuple[int, dict[str, Any]]]) -> web.Application:
    async def post_config(request: web.Request) -> web.Response:
        received.append(await read_json_body(request, 16 * 1024 * 1024))
        status, body = answers.pop(0)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/v1/config", post_config)
    return app


async def tongban(*args: str, fed_dir: Path) -> tuple[int, str]:
    """Run the installed ``tongban`` command in a subprocess."""
    env = {**os.environ, "TONGBAN_FED_DIR": str(fed_dir), "TONGBAN_ROOT_PASSPHRASE": PASSPHRASE}
    proc = await asyncio.create_subprocess_exec(
        str(TONGBAN),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8")


async def test_config_push_posts_the_signed_config(
    shenyang: Run, fed_dir: Path, aiohttp_server: ServerFactory
) -> None:
    shenyang("config", "sign")
    received: list[Any] = []
    answers: list[tuple[int, dict[str, Any]]] = [
        (200, {"serial": 1, "adopted": True}),
        (409, {"error": "stale_serial", "detail": "offered serial 1 < held serial 2"}),
        (200, {"serial": 1, "adopted": False}),
    ]
    server = await aiohttp_server(receiver(received, answers), **RUNNER_KWARGS)
    base = str(server.make_url("/"))

    code, out = await tongban("ops", "config", "push", base, fed_dir=fed_dir)
    assert code == 0, out
    assert "已发布 serial 1" in out and '"adopted": true' in out
    signed = loads_strict((fed_dir / "current.json").read_bytes())
    assert received == [signed]
    assert parse_signed(received[0]).serial == 1

    code, out = await tongban("ops", "config", "push", base, fed_dir=fed_dir)
    assert code == 1
    assert "枢纽拒绝了 serial 1: HTTP 409 stale_serial" in out

    # The full endpoint URL is accepted too, and the body may go uncompressed.
    url = str(server.make_url("/v1/config"))
    code, out = await tongban("ops", "config", "push", url, "--no-gzip", fed_dir=fed_dir)
    assert code == 0, out
    assert received[-1] == signed


async def test_config_push_to_nobody(shenyang: Run, fed_dir: Path, unused_tcp_port: int) -> None:
    shenyang("config", "sign")
    code, out = await tongban(
        "ops", "config", "push", f"http://127.0.0.1:{unused_tcp_port}/", fed_dir=fed_dir
    )
    assert code == 1 and "无法连接" in out
    code, out = await tongban("ops", "config", "push", "ftp://x/", fed_dir=fed_dir)
    assert code == 1 and "http(s)" in out
