"""Station commands (``tongban node``): init, run, migrate, passwd, restore."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click

from protocol.case import CHINA_TIME
from protocol.config import SignedConfig, accept_config, parse_signed
from protocol.encoding import loads_strict
from protocol.enrol import Enrolment, enrolment_text, make_enrolment
from protocol.errors import ProtocolError
from protocol.ids import is_within
from protocol.keys import PublicKey

from .logs import setup_logging
from .station import DEFAULT_HOST, DEFAULT_PORT, DataDir, Station, StationError

ADMIN = "admin"
FC = TypeVar("FC", bound=Callable[..., object])


@click.group()
def node() -> None:
    """The window node of a village or township station."""


def _data_option() -> Callable[[FC], FC]:
    return click.option(
        "--data",
        "data",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="The station's data directory.",
    )


def _read_config(
    path: Path, roots: tuple[PublicKey, ...]
) -> tuple[SignedConfig, tuple[PublicKey, ...]]:
    """The signed config file, verified against ``roots`` (or its own root keys)."""
    try:
        offered = parse_signed(loads_strict(path.read_bytes()))
        anchors = roots or tuple(g.key for g in offered.config.root_keys)
        return accept_config(None, offered, anchors), anchors
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None
    except ProtocolError as exc:
        raise click.ClickException(f"{path}: {exc.reason}: {exc.detail}") from None


def _parent_member(config: SignedConfig | None, station_id: str, parent_url: str) -> str | None:
    """The parent hub's member id, when the config tells it."""
    if config is None:
        return None
    members = config.config.members
    if station_id in members:
        return members[station_id].parent
    wanted = parent_url.rstrip("/")
    for member in members.values():
        if (
            member.endpoint
            and member.endpoint.rstrip("/") == wanted
            and is_within(station_id, member.id)
        ):
            return member.id
    hubs = [
        m
        for m in members.values()
        if m.is_hub and is_within(station_id, m.id) and m.id != station_id
    ]
    return max(hubs, key=lambda m: len(m.id)).id if hubs else None


async def _init_db(data: DataDir, station: Station, config: SignedConfig | None) -> str:
    # Storage pulls in SQLAlchemy, alembic and argon2: import it only where it is used, so
    # every other `tongban` command starts quickly.
    from .services.auth import Auth
    from .services.context import ConfigCache
    from .storage import Database, Store

    db = Database.open(data.db_url)
    try:
        await db.migrate()
        store = Store(db)
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        if config is not None:
            await ConfigCache(station.root_keys).adopt(store, config, at)
        _, password = await Auth(store).create_clerk(ADMIN, "站点管理员", "admin", at)
        return password
    finally:
        await db.close()


@node.command("init")
@click.option(
    "--id", "member_id", required=True, help="Division code of the station (e.g. 210102001001)."
)
@click.option("--parent", "parent_url", required=True, help="URL of the parent hub.")
@_data_option()
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True)
@click.option("--host", default=DEFAULT_HOST, show_default=True)
@click.option(
    "--root", "roots", multiple=True, help="City root public key (base64url); repeatable."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A signed federation config handed over by the operator.",
)
@click.option("--name", default="", help="The station's name, e.g. 某某村便民服务站.")
def init(
    member_id: str,
    parent_url: str,
    data: Path,
    port: int,
    host: str,
    roots: tuple[str, ...],
    config_path: Path | None,
    name: str,
) -> None:
    """Create a station: key, station.json, database, admin account; print the enrolment."""
    try:
        anchors = tuple(PublicKey.from_text(r.strip()) for r in roots)
    except ProtocolError as exc:
        raise click.ClickException(f"--root: {exc.detail}") from None
    config = None
    if config_path is not None:
        config, anchors = _read_config(config_path, anchors)
    if not anchors:
        raise click.ClickException("give the city root key (--root) or a signed config (--config)")
    folder = DataDir(data)
    if folder.station_file.exists() or folder.key_file.exists():
        raise click.ClickException(f"{data} already holds a station: refusing to overwrite it")
    try:
        station = Station(
            id=member_id,
            parent_url=parent_url,
            name=name.strip() or f"站点 {member_id}",
            host=host,
            port=port,
            root_keys=anchors,
        )
    except StationError as exc:
        raise click.ClickException(str(exc)) from None
    data.mkdir(parents=True, exist_ok=True)
    folder.blob_dir.mkdir(exist_ok=True)
    key = folder.create_key()
    folder.save_station(station)
    password = asyncio.run(_init_db(folder, station, config))

    created = datetime.now(CHINA_TIME).isoformat(timespec="seconds")
    request = make_enrolment(
        key,
        Enrolment(
            id=station.id,
            name=station.name,
            role="station",
            parent=_parent_member(config, station.id, parent_url),
            endpoint=None,
            public=key.public,
            created=created,
        ),
    )
    click.echo(f"站点 {station.id} 已创建：{data}")
    click.echo(f"  成员密钥 {folder.key_file}（kid {key.kid}）")
    if config is not None:
        click.echo(f"  联邦配置 第 {config.serial} 版（{config.config.name}）")
        if station.id not in config.config.members:
            click.echo("  注意：本站尚未列入联邦配置，注册获批前不能与上级同步。")
    click.echo("")
    click.echo("管理员账号（初始密码只显示这一次，请登录后立即修改）：")
    click.echo(f"  用户名 {ADMIN}")
    click.echo(f"  密码   {password}")
    click.echo("")
    click.echo("注册申请（请交给运维人员）：")
    click.echo(enrolment_text(request))
    click.echo(json.dumps(request, ensure_ascii=False, indent=2))


@node.command("run")
@_data_option()
@click.option(
    "--host", default=None, help="Address to listen on (default: station.json, 127.0.0.1)."
)
@click.option("--port", type=int, default=None, help="Port (default: station.json).")
@click.option("--no-sync", is_flag=True, help="Serve without syncing (maintenance).")
def run(data: Path, host: str | None, port: int | None, no_sync: bool) -> None:
    """Migrate the database, serve the window on 127.0.0.1 and sync with the parent hub."""
    setup_logging()
    try:
        asyncio.run(_serve(DataDir(data), host, port, not no_sync))
    except KeyboardInterrupt:
        pass
    except StationError as exc:
        raise click.ClickException(str(exc)) from None


async def _serve(data: DataDir, host: str | None, port: int | None, sync: bool) -> None:
    from .runtime import running

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(sig, stop.set)  # Windows: Ctrl+C raises KeyboardInterrupt
    async with running(data, host=host, port=port, sync=sync) as started:
        click.echo(f"tongban node {started.ctx.station.id} listening on {started.url}", err=False)
        sys.stdout.flush()
        await stop.wait()


@node.command("migrate")
@_data_option()
def migrate(data: Path) -> None:
    """Apply the database migrations (``run`` does this on start too)."""
    folder = DataDir(data)
    if not folder.station_file.exists():
        raise click.ClickException(f"{folder.station_file} not found: run `tongban node init`")

    async def go() -> list[str]:
        from .storage import Database

        db = Database.open(folder.db_url)
        try:
            return await db.migrate()
        finally:
            await db.close()

    applied = asyncio.run(go())
    click.echo(f"applied {', '.join(applied)}" if applied else "database is up to date")


@node.command("passwd")
@_data_option()
@click.option("--username", default=ADMIN, show_default=True)
def passwd(data: Path, username: str) -> None:
    """Set a new random password for a clerk (prints it once) and end their sessions."""
    folder = DataDir(data)

    async def go() -> str:
        from .services.auth import Auth
        from .storage import Database, Store

        db = Database.open(folder.db_url)
        try:
            await db.migrate()
            store = Store(db)
            return await Auth(store).reset_password(
                username, datetime.now(UTC).isoformat(timespec="milliseconds")
            )
        finally:
            await db.close()

    try:
        password = asyncio.run(go())
    except LookupError:
        raise click.ClickException(f"no clerk {username!r}") from None
    click.echo(f"用户 {username} 的新密码（只显示这一次）：{password}")


@node.command("restore")
@_data_option()
def restore(data: Path) -> None:
    """Rebuild this station's cases, events and materials from its district hub.

    For a replacement PC after a disk loss: run ``node init`` with the same member id, have
    the operator list the new key for the member, then ``node restore`` before ``node run``.
    """
    setup_logging()
    folder = DataDir(data)
    if not folder.station_file.exists():
        raise click.ClickException(f"{folder.station_file} not found: run `tongban node init`")

    async def go() -> None:
        import aiohttp

        from .restore import restore_station
        from .runtime import open_context

        ctx = await open_context(folder)
        try:
            async with aiohttp.ClientSession() as session:
                report = await restore_station(ctx, session, say=click.echo)
        finally:
            await ctx.store.db.close()
        click.echo(
            f"恢复完成：本站记录 {report.events} 条（链头 {report.head[0]}），"
            f"材料 {report.blobs} 个，收到的记录 {report.received} 条，办件 {report.cases} 件"
        )

    from .restore import RestoreError

    try:
        asyncio.run(go())
    except (RestoreError, StationError) as exc:
        raise click.ClickException(str(exc)) from None
