"""Hub commands (``tongban hub``): init, run, migrate, passwd."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Awaitable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from protocol.case import CHINA_TIME
from protocol.config import SignedConfig, parse_signed
from protocol.encoding import loads_strict
from protocol.enrol import Enrolment, enrolment_text, make_enrolment
from protocol.errors import ProtocolError
from protocol.ids import division, level_of
from protocol.keys import KeyPair, PublicKey

from .config import DEFAULT_HOST, DEFAULT_PORT, HubSettings, SettingsError, init_data_dir

T = TypeVar("T")


def _run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    try:
        return asyncio.run(main())
    except (SettingsError, ProtocolError) as exc:
        raise click.ClickException(str(exc)) from None


def _parent_of(member_id: str) -> str | None:
    """The division above a hub by level (a district's city, a township's district)."""
    div = division(member_id)
    cut = {"city": 0, "district": 4, "township": 6, "village": 9}[level_of(member_id)]
    return div[:cut] or None


def _read_config(path: Path, roots: list[PublicKey]) -> SignedConfig:
    try:
        signed = parse_signed(loads_strict(path.read_bytes()))
        # Handed over by the operator: trust its own root keys unless --root names others.
        signed.verify(roots or [g.key for g in signed.config.root_keys])
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    except ProtocolError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    return signed


@click.group()
def hub() -> None:
    """A district or city hub: custody, routing, review."""


@hub.command("init")
@click.option("--id", "member_id", required=True, help="The hub's division code, e.g. 210102.")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Data directory.")
@click.option("--name", default=None, help="Name for the enrolment request (和平区政务服务中心).")
@click.option("--parent", "parent_url", default=None, help="URL of the parent hub (none: city).")
@click.option("--db", default=None, help="Database URL (default: SQLite in the data dir).")
@click.option("--host", default=DEFAULT_HOST, show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--public-base", default=None, help="Public base URL behind a reverse proxy.")
@click.option("--root", "roots", multiple=True, help="City root public key (base64url).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Signed federation config from the operator.",
)
@click.option("--authority", "departments", multiple=True, help="Department hosted here (sfj).")
def init(
    member_id: str,
    data: Path,
    name: str | None,
    parent_url: str | None,
    db: str | None,
    host: str,
    port: int,
    public_base: str | None,
    roots: tuple[str, ...],
    config_path: Path | None,
    departments: tuple[str, ...],
) -> None:
    """Create a hub's data directory and keys; print the enrolment request."""
    try:
        anchors = [PublicKey.from_text(r) for r in roots]
    except ProtocolError:
        raise click.ClickException("--root must be a base64url public key") from None
    signed = None if config_path is None else _read_config(config_path, anchors)
    root_texts = list(roots)
    if signed is not None and not root_texts:
        root_texts = [g.key.to_text() for g in signed.config.root_keys]
    if not root_texts:
        raise click.ClickException("give the city root key (--root) or a signed config (--config)")
    key = KeyPair.generate(os.urandom(32))
    seals = {dept: KeyPair.generate(os.urandom(32)) for dept in dict.fromkeys(departments)}
    try:
        settings = HubSettings(
            data=data,
            id=member_id,
            name=name or f"枢纽 {member_id}",
            parent_url=parent_url,
            db=db,
            host=host,
            port=port,
            public_base=public_base,
            root_keys=tuple(root_texts),
        )
        init_data_dir(
            settings, key, seals, signed_config=None if signed is None else signed.to_dict()
        )
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    listed = None if signed is None else signed.config.members.get(member_id)
    request = make_enrolment(
        key,
        Enrolment(
            id=member_id,
            name=settings.name,
            role="hub",
            parent=listed.parent if listed is not None else _parent_of(member_id),
            endpoint=public_base or f"http://{host}:{port}/",
            public=key.public,
            created=datetime.now(CHINA_TIME).isoformat(timespec="seconds"),
            seal_keys={dept: seal.public for dept, seal in seals.items()},
        ),
    )
    click.echo(f"已创建枢纽 {member_id} 的数据目录：{data}")
    click.echo(f"成员密钥 kid={key.kid}")
    for dept, seal in seals.items():
        click.echo(f"印章密钥 {member_id}:{dept} kid={seal.kid} public={seal.public.to_text()}")
    click.echo("请将下面的登记申请交给市级运维人员（enrolment request）：")
    click.echo(enrolment_text(request))


def _settings(data: Path, db: str | None) -> HubSettings:
    try:
        return HubSettings.load(data).with_db(db)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def settle_heap() -> None:
    """Move what lives now (the parsed config of thousands of members, the app) out of the
    collector's generations: a busy hub triggers full collections, which would walk it all
    again each time (measured: 40 µs of every ingested event went to the collector)."""
    gc.collect()
    gc.freeze()


#: Full collections of the hub's heap: on this schedule rather than when the collector's
#: own count says so. With 2,000 windows holding long-polls the heap holds ~180,000 objects,
#: and a full collection stops the hub for ~200 ms; left to itself it ran every ~14 s under
#: load, each time answering every request in flight late (B5's p99). Young garbage is still
#: collected as usual; cyclic garbage that grew old waits at most this long.
FULL_COLLECTION_SECONDS = 600.0


async def collect_on_schedule() -> None:
    """Run the full collections every :data:`FULL_COLLECTION_SECONDS` (until cancelled),
    none in between."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 2**30)  # a gen-1 count the collector never reaches
    while True:
        await asyncio.sleep(FULL_COLLECTION_SECONDS)
        gc.collect()


@hub.command("run")
@click.option("--data", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--db", default=None, help="Database URL (overrides hub.json).")
@click.option("--host", default=None, help="Listen address (overrides hub.json).")
@click.option("--port", default=None, type=int, help="Listen port (overrides hub.json).")
def run(data: Path, db: str | None, host: str | None, port: int | None) -> None:
    """Serve the hub (applies migrations first)."""
    from aiohttp import web

    from protocol.http import RUNNER_KWARGS

    from .app import build_app
    from .core import open_hub
    from .logs import setup_logging

    settings = _settings(data, db)
    setup_logging()

    async def make_app() -> web.Application:
        hub_ = await open_hub(settings)
        hub_.view.loaded = settle_heap
        settle_heap()
        app = build_app(hub_)
        collector = asyncio.get_running_loop().create_task(collect_on_schedule())

        async def close(_app: web.Application) -> None:
            collector.cancel()
            await hub_.close()

        app.on_cleanup.append(close)
        return app

    try:
        web.run_app(
            make_app(),
            host=host or settings.host,
            port=port or settings.port,
            access_log=None,
            # Children hold long-polls open for up to a minute; waiting for them would make a
            # restart slow for nothing (a long-poll answered by a closed socket is retried).
            shutdown_timeout=3.0,
            print=lambda text: click.echo(text),
            **RUNNER_KWARGS,
        )
    except (SettingsError, ProtocolError) as exc:
        raise click.ClickException(str(exc)) from None


@hub.command("migrate")
@click.option("--data", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--db", default=None, help="Database URL (overrides hub.json).")
def migrate_command(data: Path, db: str | None) -> None:
    """Bring the hub database to the newest schema."""
    from .storage import make_engine, migrate
    from .storage.migrate import current_revision

    settings = _settings(data, db)

    async def main() -> str | None:
        engine = make_engine(settings.db_url)
        try:
            await migrate(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    click.echo(f"数据库已是最新版本：{_run(main())}")


@hub.command("passwd")
@click.option("--data", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--db", default=None, help="Database URL (overrides hub.json).")
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the password from this file (first line; one line per STAFF_ID) instead of stdin.",
)
@click.argument("staff_ids", metavar="STAFF_ID...", nargs=-1, required=True)
def passwd(
    data: Path, db: str | None, password_file: Path | None, staff_ids: tuple[str, ...]
) -> None:
    """Set a workbench password for STAFF_ID (who they are comes from the signed config).

    Several STAFF_IDs take one password each, a line apiece in order (stdin or the file),
    set in one run (a demo or a new hub's accounts).
    """
    from .core import open_hub
    from .services.staff import set_password

    settings = _settings(data, db)
    if password_file is not None:
        lines = password_file.read_text("utf-8").splitlines()
    elif sys.stdin.isatty() and len(staff_ids) == 1:
        lines = [click.prompt("新密码", hide_input=True, confirmation_prompt=True)]
    else:
        read = [sys.stdin.readline() for _ in staff_ids]
        lines = [line.rstrip("\r\n") for line in read if line]  # "" only at the end
    if len(lines) < len(staff_ids):
        raise click.ClickException(
            f"需要 {len(staff_ids)} 行密码（每个工号一行），只有 {len(lines)} 行"
        )

    async def main() -> Any:
        hub_ = await open_hub(settings)
        try:
            return [
                await set_password(hub_, staff_id, password)
                for staff_id, password in zip(staff_ids, lines, strict=False)
            ]
        finally:
            await hub_.close()

    for staff in _run(main()):
        click.echo(f"已为 {staff.name}（{staff.id}）设置工作台密码")
