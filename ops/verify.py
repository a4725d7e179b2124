"""``tongban verify <file or QR text>``: check a sealed result (电子签章) offline.

The result is the QR text printed on the result (``TBRES1.…``), the sealed JSON document, or
a file holding either. It is checked against a federation config, read from ``--config``
(a signed config file) or found in a data directory (``--data``, default the operator's
federation directory ``$TONGBAN_FED_DIR`` or ``./federation``): the operator's
``current.json``, else a hub's or station's ``config.json``. The config's own signature is
checked against the root keys the data directory trusts (a hub's ``hub.json`` or a station's
``station.json``), or, with none, against the root keys it lists itself (said so in the
output). No network, no database server.

A result sealed by a metro peer city's authority (都市圈) is judged against that city's own
config, signed by the root keys the home config lists for it (``peers[].root_keys``, as the
hub's and the station's peer config fetch does). Peer configs come from ``--peer-config``
files, from ``<data>/peers/*.json``, and from a station's own database (``<data>/node.db``,
read only), where the station keeps the peer configs its hub handed down; a hub keeps them
in PostgreSQL, so for a hub give them as files. The output names the city that sealed it.

Exit status 0: genuine; 1: not genuine, or nothing to check against.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Final

import click

from protocol.config import Federation, FederationConfig, SignedConfig, parse_signed
from protocol.encoding import loads_strict
from protocol.errors import ProtocolError
from protocol.http.web.result import Verdict, check_text
from protocol.keys import PublicKey
from protocol.seal import PREFIX

DIR_ENV: Final = "TONGBAN_FED_DIR"
CONFIG_NAMES: Final = ("current.json", "config.json")  # ops federation dir; hub or station
TRUST_FILES: Final = ("hub.json", "station.json")  # settings that list the trusted root keys
MAX_INPUT: Final = 1 << 20
PEER_DIR: Final = "peers"  # <data>/peers/<city>.json: metro peer configs
STATION_DB: Final = "node.db"  # a station's database, where it keeps the peer configs


def _read_target(target: str) -> str:
    """The text to check: the file's contents when ``target`` names a file, else itself."""
    if target.lstrip().startswith((PREFIX, "{")):
        return target
    path = Path(target)
    try:
        if not path.is_file():
            return target
        if path.stat().st_size > MAX_INPUT:
            raise click.ClickException(f"{target} 过大，不是结果文书")
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"无法读取 {target}: {exc}") from None


def _trusted_roots(data: Path) -> list[PublicKey]:
    roots: list[PublicKey] = []
    for name in TRUST_FILES:
        path = data / name
        if path.is_file():
            try:
                settings = json.loads(path.read_text("utf-8"))
                roots += [PublicKey.from_text(str(k)) for k in settings.get("root_keys", [])]
            except (OSError, ValueError, AttributeError, ProtocolError) as exc:
                raise click.ClickException(f"{path} 无法读取: {exc}") from None
    return roots


def find_config(config: Path | None, data: Path) -> tuple[Path, list[PublicKey]]:
    """The config file to check against and the root keys trusted for it."""
    if config is not None:
        return config, []
    for name in CONFIG_NAMES:
        if (data / name).is_file():
            return data / name, _trusted_roots(data)
    raise click.ClickException(
        f"在 {data} 下找不到联邦配置（{' 或 '.join(CONFIG_NAMES)}）；用 --config 指定配置文件，"
        "或用 --data 指定运维目录、枢纽或站点的数据目录"
    )


def load_federation(path: Path, roots: list[PublicKey]) -> tuple[SignedConfig, bool]:
    """The signed config at ``path``, its signature checked; True when checked against
    roots the data directory trusts (False: against the config's own root keys)."""
    try:
        signed = parse_signed(loads_strict(path.read_bytes()))
    except OSError as exc:
        raise click.ClickException(f"无法读取 {path}: {exc}") from None
    except ProtocolError as exc:
        raise click.ClickException(
            f"{path} 不是有效的联邦配置: {exc.detail} ({exc.reason})"
        ) from None
    anchors = roots or [g.key for g in signed.config.root_keys]
    try:
        signed.verify(anchors)
    except ProtocolError:
        raise click.ClickException(f"{path} 的根签名无效，不能用它核验") from None
    return signed, bool(roots)


def _station_peer_configs(db: Path) -> list[tuple[str, bytes]]:
    """The metro peer configs a station keeps in its database (opened read only)."""
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT city, signed FROM configs WHERE home = 0").fetchall()
    except sqlite3.Error as exc:
        raise click.ClickException(f"{db} 无法读取: {exc}") from None
    return [(f"{db}（{city}）", str(signed).encode()) for city, signed in rows]


def peer_sources(data: Path | None, files: tuple[Path, ...]) -> list[tuple[str, bytes]]:
    """(where, signed config bytes) of every metro peer config to consider."""
    found: list[tuple[Path, bytes]] = []
    paths = list(files)
    if data is not None and (data / PEER_DIR).is_dir():
        paths += sorted((data / PEER_DIR).glob("*.json"))
    for path in paths:
        try:
            found.append((path, path.read_bytes()))
        except OSError as exc:
            raise click.ClickException(f"无法读取 {path}: {exc}") from None
    out = [(str(path), raw) for path, raw in found]
    if data is not None and (data / STATION_DB).is_file():
        out += _station_peer_configs(data / STATION_DB)
    return out


def load_peers(
    home: SignedConfig, sources: list[tuple[str, bytes]]
) -> tuple[dict[str, FederationConfig], list[str]]:
    """The peer configs that the home config lists and whose root signature holds; and a
    warning for each one left out (the result it would judge then fails as unknown)."""
    peers: dict[str, FederationConfig] = {}
    serials: dict[str, int] = {}
    warnings = []
    for where, raw in sources:
        try:
            signed = parse_signed(loads_strict(raw))
        except ProtocolError as exc:
            warnings.append(f"{where} 不是有效的联邦配置（{exc.reason}），未采用")
            continue
        city = signed.config.federation
        listed = home.config.peers.get(city)
        if listed is None:
            warnings.append(f"{where}：{city} 不是本联邦配置中的都市圈伙伴城市，未采用")
            continue
        try:
            signed.verify(g.key for g in listed.root_keys)
        except ProtocolError:
            warnings.append(f"{where}：不是 {listed.name} 的根密钥签发的配置，未采用")
            continue
        if signed.serial > serials.get(city, 0):  # the newest of several copies
            peers[city], serials[city] = signed.config, signed.serial
    return peers, warnings


def report(verdict: Verdict) -> str:
    """The verdict as printed."""
    return "\n".join([verdict.headline, *(f"  {line}" for line in verdict.lines)])


@click.command("verify")
@click.argument("target")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A signed federation config file to check against.",
)
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default="federation",
    envvar=DIR_ENV,
    show_default=True,
    help=f"Where to find the config: the operator directory (or ${DIR_ENV}), a hub's or "
    "station's data directory.",
)
@click.option(
    "--peer-config",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A metro peer city's signed config (repeatable), checked against the root keys the "
    "home config lists for that city.",
)
def verify(target: str, config: Path | None, data: Path, peer_config: tuple[Path, ...]) -> None:
    """Check a sealed result offline: genuine or not, sealed by whom, seal key valid then."""
    text = _read_target(target)
    path, roots = find_config(config, data)
    signed, anchored = load_federation(path, roots)
    peers, warnings = load_peers(signed, peer_sources(None if config else data, peer_config))
    for warning in warnings:
        click.echo(f"注意：{warning}", err=True)
    verdict = check_text(text, Federation(signed.config, peers))
    click.echo(report(verdict))
    trust = "数据目录信任的根密钥" if anchored else "配置自身列出的根密钥（未指定信任根）"
    click.echo(
        f"  核验依据：{path}（联邦 {signed.config.federation}，第 {signed.serial} 版，{trust}）"
    )
    for city, peer in sorted(peers.items()):
        click.echo(
            f"  都市圈伙伴城市配置：{peer.name}（{city}，第 {peer.serial} 版，该市根密钥签发）"
        )
    if not verdict.genuine:
        raise SystemExit(1)
