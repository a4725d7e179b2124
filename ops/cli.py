"""Operator commands (``tongban ops``): federation config, enrolment, keys, catalog, peers.

Every command works on an operator directory (``--dir``, default ``./federation`` or
``$TONGBAN_FED_DIR``; layout in :mod:`ops.federation`). Commands that change the federation
edit the draft ``federation.json`` and print what changed; ``--dry-run`` prints the same and
writes nothing. ``config sign`` turns the draft into the next signed config with the root key;
``config push`` hands it to the city hub. Messages to the operator are in Chinese.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from protocol.config import FederationConfig, Freshness, SignedConfig
from protocol.enrol import Enrolment, parse_enrolment_text
from protocol.errors import ProtocolError
from protocol.keys import PublicKey
from protocol.workdays import Calendar

from . import federation as fedmod
from .catalog import check_catalog
from .diff import diff_configs
from .enrolment import entrust_key, make_request
from .federation import FederationDir, OpsError
from .holidays import CalendarSourceError, from_file, from_package, known_years

P = ParamSpec("P")
R = TypeVar("R")

PASSPHRASE_ENV = "TONGBAN_ROOT_PASSPHRASE"
OPERATOR_PASSWORD_ENV = "TONGBAN_OPERATOR_PASSWORD"
DIR_ENV = "TONGBAN_FED_DIR"


def explained(func: Callable[P, R]) -> Callable[P, R]:
    """Turn refusals (OpsError, protocol errors) into a clear CLI error and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except OpsError as exc:
            raise click.ClickException(str(exc)) from None
        except ProtocolError as exc:
            raise click.ClickException(f"{exc.detail or exc.reason} ({exc.reason})") from None

    return wrapper


def dir_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--dir",
        "fed_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default="federation",
        envvar=DIR_ENV,
        show_default=True,
        help=f"Operator directory (or ${DIR_ENV}).",
    )(func)


def dry_run_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")(
        func
    )


def passphrase_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=f"Read the root key passphrase from a file (else ${PASSPHRASE_ENV}, else a prompt).",
    )(func)


def _read_passphrase(path: Path | None, *, confirm: bool) -> bytes:
    if path is not None:
        return path.read_bytes().rstrip(b"\r\n")
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return env.encode("utf-8")
    text: str = click.prompt(
        "根密钥口令 (root key passphrase)",
        hide_input=True,
        confirmation_prompt="再输入一次确认 (repeat)" if confirm else False,
        default="",
        show_default=False,
    )
    return text.encode("utf-8")


def _read_secret(path: Path | None, env: str, prompt: str) -> str:
    if path is not None:
        return path.read_text("utf-8").rstrip("\r\n")
    value = os.environ.get(env)
    if value is not None:
        return value
    text: str = click.prompt(prompt, hide_input=True)
    return text


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A plain text table aligned for CJK (wide) characters."""
    body = [list(headers), *([str(c) for c in row] for row in rows)]
    widths = [max(_width(row[i]) for row in body) for i in range(len(headers))]
    lines = [
        "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip()
        for row in body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _commit(
    fed: FederationDir,
    old: dict[str, Any],
    new: dict[str, Any],
    dry_run: bool,
    notes: Iterable[str] = (),
) -> None:
    """Show the change to the draft and write it unless this is a dry run."""
    for note in notes:
        click.echo(f"注意: {note}")
    lines = diff_configs(old, new)
    if not lines:
        click.echo("没有变化 (no change).")
        return
    click.echo("\n".join(lines))
    if dry_run:
        click.echo("演练 (--dry-run): 什么都没有写入.")
        return
    fed.save_draft(new)
    click.echo(f"已写入草稿 {fed.draft_path}; 用 `tongban ops config sign` 签发生效.")


def _read_request(arg: str) -> str:
    """An enrolment request given as text, a file name, or ``-`` (standard input)."""
    if arg == "-":
        return sys.stdin.read()
    if arg.lstrip().startswith(("TBENROL1.", "{")):
        return arg
    try:
        return Path(arg).read_text("utf-8")
    except FileNotFoundError:
        raise OpsError(f"找不到入网申请文件 {arg} (申请文本应以 TBENROL1. 开头)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OpsError(f"读不了入网申请 {arg}: {exc}") from None


def _enrolment(arg: str) -> Enrolment:
    try:
        return parse_enrolment_text(_read_request(arg))
    except ProtocolError as exc:
        raise OpsError(
            f"入网申请无效 ({exc.reason}): {exc.detail}. 请让该站点重新生成并完整复制"
            " (以 TBENROL1. 开头的一行, 或 JSON)"
        ) from None


def _authority_names(values: Sequence[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for value in values:
        dept, sep, name = value.partition("=")
        if not sep or not dept.strip() or not name.strip():
            raise OpsError(
                f"--authority-name 应写作 部门=名称 (如 sfj=沈阳市司法局), 而不是 {value!r}"
            )
        names[dept.strip()] = name.strip()
    return names


# -- groups ------------------------------------------------------------------------------


@click.group()
def ops() -> None:
    """City operator tools: federation, members, catalog, peers, config."""


@click.group()
def demo() -> None:
    """The 沈阳都市圈 demo federation on localhost (SQLite), and a day's scenario."""


@demo.command("run")
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-data"),
    show_default=True,
    help="Where the demo keeps every member's data (reused on the next run).",
)
@click.option("--port", "base_port", type=int, default=8400, show_default=True, help="First port.")
@click.option(
    "--topology",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Members and ports for a new demo (default ops/examples/demo.yaml).",
)
def demo_run(root: Path, base_port: int, topology: Path | None) -> None:
    """Start the 沈阳都市圈 demo on 127.0.0.1 (SQLite) and print where to click.

    The first run builds it (沈阳 and 抚顺 city hubs as metro peers, district hubs, village
    and township stations, the example catalogs, reviewer accounts); later runs start the
    same members with their data. Ctrl-C stops all.
    """
    from .demo import run
    from .launch import LaunchError

    try:
        asyncio.run(run(root, base_port, topology))
    except LaunchError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


@demo.command("scenario")
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-data"),
    show_default=True,
    help="The running demo's folder (logins.json).",
)
@click.option("--cases", type=int, default=300, show_default=True, help="Applications in the day.")
@click.option("--seed", type=int, default=2026, show_default=True, help="Random seed.")
@click.option("--list", "list_acts", is_flag=True, help="List the acts (and those still missing).")
def demo_scenario(root: Path, cases: int, seed: int, list_acts: bool) -> None:
    """Drive a working day against the running demo through its public HTTP APIs.

    Windows accept applications (市区联办, 都市圈通办, 容缺, 告知承诺, pickups elsewhere), a
    village goes offline for part of the day, reviewers decide, windows hand results out;
    it ends with a summary whose numbers add up.
    """
    from .launch import LaunchError
    from .scenario import ScenarioError, describe, run_scenario

    if list_acts:
        click.echo(describe())
        return
    try:
        summary = asyncio.run(run_scenario(root, cases=cases, seed=seed))
    except (LaunchError, ScenarioError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary.render())
    if not summary.adds_up():
        raise click.ClickException("汇总数字对不上：有办件下落不明")


@ops.group("federation")
def federation_group() -> None:
    """Create the federation (root key and draft config)."""


@ops.group("member")
def member_group() -> None:
    """Members (成员): approve enrolment, revoke, rotate keys, list with last seen."""


@ops.group("authority")
def authority_group() -> None:
    """Authorities (部门): departments at hubs that decide matters and seal results."""


@ops.group("staff")
def staff_group() -> None:
    """Staff accounts (工作人员): reviewers and clerks with department and roles."""


@ops.group("catalog")
def catalog_group() -> None:
    """The matter catalog (事项清单)."""


@ops.group("calendar")
def calendar_group() -> None:
    """The working-day calendar (节假日与调休)."""


@ops.group("peer")
def peer_group() -> None:
    """Metro partner cities (都市圈通办)."""


@ops.group("config")
def config_group() -> None:
    """Sign, show, compare and publish the federation config."""


# -- federation --------------------------------------------------------------------------


def _default_calendar(today: datetime) -> tuple[Calendar, list[str]]:
    """This year and next from ``chinese-calendar``, as far as it knows them."""
    calendar = Calendar(frozenset(), frozenset(), frozenset())
    notes = []
    for year in (today.year, today.year + 1):
        try:
            got = from_package(year)
        except CalendarSourceError:
            notes.append(
                f"chinese-calendar 没有 {year} 年的放假安排; 公布后用"
                f" `tongban ops calendar set --year {year} --file …` 导入"
            )
            continue
        calendar = Calendar(
            calendar.years | {year},
            calendar.holidays | got.holidays,
            calendar.workdays | got.workdays,
        )
    return calendar, notes


@federation_group.command("init")
@click.option("--city", required=True, help="4-digit city code, e.g. 2101 (沈阳).")
@click.option("--name", required=True, help="Federation name, e.g. 沈阳市.")
@click.option(
    "--hub-enrolment",
    metavar="REQUEST",
    help="Approve the city hub's enrolment request (text or file) in the same step.",
)
@click.option(
    "--authority-name",
    multiple=True,
    metavar="DEPT=NAME",
    help="With --hub-enrolment: name of a department, e.g. sfj=沈阳市司法局 (repeatable).",
)
@click.option(
    "--insecure-no-passphrase",
    is_flag=True,
    help="Store the root key unencrypted (demos and tests only).",
)
@passphrase_option
@dir_option
@dry_run_option
@explained
def federation_init(
    city: str,
    name: str,
    hub_enrolment: str | None,
    authority_name: tuple[str, ...],
    insecure_no_passphrase: bool,
    passphrase_file: Path | None,
    fed_dir: Path,
    dry_run: bool,
) -> None:
    """Create the root key (root.key) and the draft config (federation.json); signs nothing.

    \b
    Example:
      tongban ops federation init --city 2101 --name 沈阳市 --dir ./federation
    """
    fed = FederationDir(fed_dir)
    if fed.root_key_path.exists() or fed.draft_path.exists():
        raise OpsError(f"{fed_dir} 已经有联邦 (root.key 或 federation.json 已存在), 未改动")
    at = fedmod.now()
    calendar, notes = _default_calendar(at)
    root = fedmod.new_root_key()
    draft = fedmod.new_draft(city, name, root.public, at, calendar)
    if hub_enrolment is not None:
        enrolment = _enrolment(hub_enrolment)
        if enrolment.id != city:
            raise OpsError(f"--hub-enrolment 应是城市枢纽 {city} 的申请, 而这是 {enrolment.id} 的")
        draft, more = fedmod.approve_member(
            draft, enrolment, at, authority_names=_authority_names(authority_name)
        )
        notes += more
    elif authority_name:
        raise OpsError("--authority-name 只与 --hub-enrolment 一起用")
    for note in notes:
        click.echo(f"注意: {note}")
    click.echo("\n".join(diff_configs(None, draft)))
    if dry_run:
        click.echo(f"演练 (--dry-run): 不会创建 {fed_dir}.")
        return
    if insecure_no_passphrase:
        passphrase = None
        click.echo("警告: 根密钥未加密保存 (--insecure-no-passphrase), 只可用于演示和测试.")
    else:
        passphrase = _read_passphrase(passphrase_file, confirm=True)
        if not passphrase:
            raise OpsError(
                "根密钥口令不能为空 (演示/测试可用 --insecure-no-passphrase); 未创建任何文件"
            )
    fed.create(draft, root, passphrase)
    click.echo(f"已创建联邦 {city} {name}: {fed.root_key_path} (0600), {fed.draft_path}")
    click.echo(f"根公钥 (root public key, kid {root.kid}): {root.public.to_text()}")
    click.echo("根密钥请离线保存并备份; 口令丢失则无法再签发配置.")


@federation_group.command("root-key")
@dir_option
@explained
def federation_root_key(fed_dir: Path) -> None:
    """Print the root public key(s): give them to hubs (hub init --root) and metro peers."""
    draft = FederationDir(fed_dir).load_draft()
    for grant in draft["root_keys"]:
        click.echo(grant["public"])
        click.echo(f"  kid {grant['kid']}, valid from {grant['valid_from']}", err=True)


# -- members -----------------------------------------------------------------------------


@member_group.command("approve")
@click.argument("request")
@click.option("--name", help="Member name to use instead of the one in the request.")
@click.option("--parent", help="Parent hub id (default: from the request).")
@click.option("--endpoint", help="Hub URL to use instead of the one in the request.")
@click.option("--station", "also_station", is_flag=True, help="A hub whose hall also has windows.")
@click.option(
    "--authority-name",
    multiple=True,
    metavar="DEPT=NAME",
    help="Name of a department of this hub, e.g. sfj=沈阳市司法局 (repeatable).",
)
@dir_option
@dry_run_option
@explained
def member_approve(
    request: str,
    name: str | None,
    parent: str | None,
    endpoint: str | None,
    also_station: bool,
    authority_name: tuple[str, ...],
    fed_dir: Path,
    dry_run: bool,
) -> None:
    """Approve an enrolment request (入网申请): REQUEST is the TBENROL1.… text, a file, or -.

    The request's signature proves the member holds the key. Its key is valid from when the
    request was made (a new station may accept cases before approval); a hub's seal keys
    become its authorities <id>:<dept>.

    \b
    Example:
      tongban ops member approve requests/210102.txt --authority-name mzj=和平区民政局
    """
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    enrolment = _enrolment(request)
    new, notes = fedmod.approve_member(
        draft,
        enrolment,
        fedmod.now(),
        name=name,
        parent=parent,
        endpoint=endpoint,
        also_station=also_station,
        authority_names=_authority_names(authority_name),
    )
    click.echo(
        f"申请: {enrolment.id} {enrolment.name} ({enrolment.role}), 密钥 kid {enrolment.public.kid}"
    )
    _commit(fed, draft, new, dry_run, notes)


def _at_option(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def add(func: Callable[P, R]) -> Callable[P, R]:
        return click.option(
            "--at",
            "at_text",
            metavar="TIME",
            help=f"When {what} takes effect, ISO 8601 (e.g. 2026-11-23T14:00:00+08:00;"
            " no offset: China time). Default: now.",
        )(func)

    return add


def _parse_at(text: str | None) -> datetime:
    if text is None:
        return fedmod.now()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise OpsError(
            f"--at 应为 ISO 8601 时间 (如 2026-11-23T14:00:00+08:00), 而不是 {text!r}"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=fedmod.CST)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "从未"
    if seconds < 120:
        return f"{int(seconds)} 秒前"
    if seconds < 7200:
        return f"{int(seconds // 60)} 分钟前"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} 小时前"
    return f"{int(seconds // 86400)} 天前"


@member_group.command("list")
@click.option(
    "--hub",
    "hub_url",
    metavar="URL",
    help="The city hub: add last seen, backlog and errors from its operator status API.",
)
@click.option(
    "--staff",
    "staff_id",
    default="operator",
    show_default=True,
    help="With --hub: an operator account (role operator) at that hub.",
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help=f"With --hub: read the password from a file (else ${OPERATOR_PASSWORD_ENV}, else a"
    " prompt).",
)
@dir_option
@explained
def member_list(
    hub_url: str | None, staff_id: str, password_file: Path | None, fed_dir: Path
) -> None:
    """List the members of the draft config (with --hub: when each was last seen).

    Last seen comes from the city hub's dashboard API (GET /dashboard/api/members, logged in
    as a staff member with the role operator): the latest event the hub received that the
    member signed or pushed itself.

    \b
    Example:
      tongban ops member list --hub http://127.0.0.1:8400/ --staff ops-wang
    """
    draft = FederationDir(fed_dir).load_draft()
    revoked = {
        r["member"]: r["revoked_at"] for r in draft.get("revocations", []) if not r.get("kid")
    }
    seen: dict[str, dict[str, Any]] = {}
    if hub_url is not None:
        from .status import StatusFailed, fetch_members  # aiohttp: only with --hub

        password = _read_secret(password_file, OPERATOR_PASSWORD_ENV, f"{staff_id} 的密码")
        try:
            seen = {m["id"]: m for m in fetch_members(hub_url, staff_id, password)}
        except StatusFailed as exc:
            raise OpsError(str(exc)) from None
    rows = []
    for m in draft["members"]:
        row = [
            m["id"],
            m["name"],
            m.get("level", ""),
            m.get("parent") or "-",
            ",".join(m["roles"]),
            " ".join(k["kid"][:12] for k in m["keys"] if k.get("valid_until") is None),
            f"吊销 {revoked[m['id']]}" if m["id"] in revoked else "有效",
        ]
        if hub_url is not None:
            info = seen.get(m["id"], {})
            row += [
                _ago(info.get("silent_seconds")),
                str(info.get("backlog", "-")),
                str(info.get("errors", "-")),
            ]
        else:
            row.append(m.get("endpoint") or "")
        rows.append(row)
    headers = ["id", "名称", "层级", "上级", "角色", "当前密钥", "状态"]
    headers += ["最近联系", "积压", "错误"] if hub_url is not None else ["endpoint"]
    click.echo(_table(headers, rows))
    click.echo(f"共 {len(rows)} 个成员")


@member_group.command("revoke")
@click.argument("member_id", metavar="ID")
@_at_option("the revocation")
@click.option("--reason", default="", help="Why (kept in the config), e.g. 设备丢失.")
@dir_option
@dry_run_option
@explained
def member_revoke(
    member_id: str, at_text: str | None, reason: str, fed_dir: Path, dry_run: bool
) -> None:
    """Revoke a member (吊销) from --at: every key it holds stops being valid then.

    Events it signed before --at still verify; its requests and later events are refused
    once the signed config reaches its hub. The member stays listed for its history.

    \b
    Example:
      tongban ops member revoke 210102001002 --at 2026-11-23T14:00:00+08:00 --reason 设备丢失
    """
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    new, notes = fedmod.revoke_member(draft, member_id, _parse_at(at_text), reason)
    _commit(fed, draft, new, dry_run, notes)


@member_group.command("rotate-key")
@click.argument("member_id", metavar="ID")
@click.option(
    "--request",
    "request_arg",
    metavar="REQUEST",
    help="A new enrolment request of the same member (TBENROL1.… text, file or -).",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A file holding the new public key (base64url, one line).",
)
@_at_option("the new key")
@dir_option
@dry_run_option
@explained
def member_rotate_key(
    member_id: str,
    request_arg: str | None,
    key_file: Path | None,
    at_text: str | None,
    fed_dir: Path,
    dry_run: bool,
) -> None:
    """Give a member a new key (换密钥) from --at; the old key stays listed until then.

    What the old key signed before --at still verifies; from --at only the new key is
    valid, so switch the member to its new key file at that moment. A hub's request may
    also carry new seal keys for its departments.

    \b
    Example:
      tongban ops member rotate-key 210102001001 --request requests/210102001001-new.txt
    """
    if (request_arg is None) == (key_file is None):
        raise OpsError("给 --request (新的入网申请) 或 --key-file (新公钥) 之一")
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    seals: dict[str, PublicKey] = {}
    if request_arg is not None:
        enrolment = _enrolment(request_arg)
        if enrolment.id != member_id:
            raise OpsError(f"这是 {enrolment.id} 的申请, 不是 {member_id} 的")
        key, seals = enrolment.public, dict(enrolment.seal_keys)
    else:
        assert key_file is not None
        text = key_file.read_text("utf-8").strip()
        try:
            key = PublicKey.from_text(text)
        except ProtocolError:
            raise OpsError(f"{key_file} 不是有效的公钥 (base64url 的 Ed25519 公钥)") from None
    click.echo(f"{member_id} 新密钥 kid {key.kid}")
    new, notes = fedmod.rotate_member_key(draft, member_id, key, _parse_at(at_text), seals)
    _commit(fed, draft, new, dry_run, notes)


@member_group.command("request")
@click.option("--id", "member_id", required=True, help="Division code, e.g. 210102001001.")
@click.option("--name", required=True, help="Name, e.g. 某某村便民服务站.")
@click.option("--role", type=click.Choice(["station", "hub"]), default="station", show_default=True)
@click.option("--parent", help="Parent hub id.")
@click.option("--endpoint", help="Hub URL (hubs only).")
@click.option("--seal", "seals", multiple=True, metavar="DEPT", help="A department (hubs).")
@click.option(
    "--data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The member's data directory: member.key and seals/<dept>.key are made there.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write here.")
@dry_run_option
@explained
def member_request(
    member_id: str,
    name: str,
    role: str,
    parent: str | None,
    endpoint: str | None,
    seals: tuple[str, ...],
    data: Path,
    out: Path | None,
    dry_run: bool,
) -> None:
    """Make a member key (and hub seal keys) and print its enrolment request.

    What `node init` / `hub init` do on the member's own machine; here for demos, tests and
    hubs set up by hand. The request is printed as one TBENROL1.… line.
    """
    text, _ = make_request(
        data, member_id, name, role, parent, endpoint, seals, fedmod.now(), dry_run=dry_run
    )
    if out is not None and not dry_run:
        out.write_text(text + "\n", "utf-8")
    click.echo(text)
    if dry_run:
        click.echo("演练 (--dry-run): 未写入密钥文件.", err=True)


# -- authorities -------------------------------------------------------------------------


@authority_group.command("add")
@click.argument("authority_id", metavar="ID")
@click.option("--name", required=True, help="e.g. 沈阳市司法局")
@dir_option
@dry_run_option
@explained
def authority_add(authority_id: str, name: str, fed_dir: Path, dry_run: bool) -> None:
    """Name an authority ID = <hub id>:<dept>, e.g. 2101:sfj, before its seal key arrives."""
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    new, notes = fedmod.add_authority(draft, authority_id, name)
    _commit(fed, draft, new, dry_run, notes)


@authority_group.command("entrust")
@click.argument("authority_id", metavar="ID")
@click.option(
    "--data",
    "stations",
    multiple=True,
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A station's data directory (repeatable): seals/<hub>-<dept>.key is made there.",
)
@dir_option
@dry_run_option
@explained
def authority_entrust(
    authority_id: str, stations: tuple[Path, ...], fed_dir: Path, dry_run: bool
) -> None:
    """Entrust a seal key of authority ID to station windows for its delegated 即办 matters.

    \b
    Example:
      tongban ops authority entrust 210102:mzj --data stations/210102001001
    """
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    fedmod.entrust_seal_keys(draft, authority_id, [], fedmod.now())  # the authority exists
    if dry_run:
        click.echo("演练 (--dry-run): 未写入密钥文件.", err=True)
        return
    keys = [entrust_key(data, authority_id).public for data in stations]
    _commit(fed, draft, fedmod.entrust_seal_keys(draft, authority_id, keys, fedmod.now()), False)


@authority_group.command("rename")
@click.argument("authority_id", metavar="ID")
@click.option("--name", required=True)
@dir_option
@dry_run_option
@explained
def authority_rename(authority_id: str, name: str, fed_dir: Path, dry_run: bool) -> None:
    """Change an authority's name."""
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    _commit(fed, draft, fedmod.rename_authority(draft, authority_id, name), dry_run)


@authority_group.command("remove")
@click.argument("authority_id", metavar="ID")
@dir_option
@dry_run_option
@explained
def authority_remove(authority_id: str, fed_dir: Path, dry_run: bool) -> None:
    """Remove an authority (e.g. one named before its hub was enrolled)."""
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    _commit(fed, draft, fedmod.remove_authority(draft, authority_id), dry_run)


@authority_group.command("list")
@dir_option
@explained
def authority_list(fed_dir: Path) -> None:
    """List authorities and their seal keys."""
    draft = FederationDir(fed_dir).load_draft()
    rows = [
        (a["id"], a["name"], " ".join(k["kid"][:12] for k in a["seal_keys"]) or "(无签章密钥)")
        for a in draft["authorities"]
    ]
    click.echo(_table(("id", "名称", "签章密钥"), rows))


# -- staff -------------------------------------------------------------------------------


@staff_group.command("add")
@click.option("--id", "staff_id", required=True, help="Login id, e.g. hp-mzj-li.")
@click.option("--name", required=True)
@click.option("--member", required=True, help="Where they work, e.g. 210102.")
@click.option("--department", help="Department code at that member, e.g. mzj (none: clerk).")
@click.option("--role", "roles", multiple=True, required=True, help="e.g. reviewer (repeatable).")
@dir_option
@dry_run_option
@explained
def staff_add(
    staff_id: str,
    name: str,
    member: str,
    department: str | None,
    roles: tuple[str, ...],
    fed_dir: Path,
    dry_run: bool,
) -> None:
    """Add a staff account with department and roles.

    \b
    Example:
      tongban ops staff add --id hp-mzj-li --name 李审核 --member 210102 \\
          --department mzj --role acceptor --role reviewer
    """
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    new = fedmod.add_staff(draft, staff_id, name, member, department, roles)
    _commit(fed, draft, new, dry_run)


@staff_group.command("disable")
@click.option("--id", "staff_id", required=True)
@_at_option("the account stops")
@dir_option
@dry_run_option
@explained
def staff_disable(staff_id: str, at_text: str | None, fed_dir: Path, dry_run: bool) -> None:
    """Disable a staff account from --at (kept, so what they signed stays attributable and
    valid: members judge each act at its own time)."""
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    new = fedmod.set_staff_active(draft, staff_id, False, _parse_at(at_text))
    _commit(fed, draft, new, dry_run)


@staff_group.command("reset")
@click.option("--id", "staff_id", required=True)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the new one-time password to this file (mode 0600) instead of printing it.",
)
@dir_option
@dry_run_option
@explained
def staff_reset(staff_id: str, password_file: Path | None, fed_dir: Path, dry_run: bool) -> None:
    """Reset a hub staff member's password (重置密码); department and roles stay as they are.

    A new random password is made here; only its argon2 hash goes into the config. Once the
    config is signed and reaches the hub, the old password stops working and the new one
    logs in. Give it to the person in private.
    """
    import secrets

    from argon2 import PasswordHasher

    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    password = secrets.token_urlsafe(12)
    digest = PasswordHasher().hash(password)
    new = fedmod.reset_staff_password(draft, staff_id, digest, fedmod.now())
    _commit(fed, draft, new, dry_run)
    if dry_run:
        return
    if password_file is not None:
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(password + "\n")
        click.echo(f"新密码已写入 {password_file} (0600)")
    else:
        click.echo(f"{staff_id} 的新密码: {password}")
    click.echo("签发并发布配置后生效: tongban ops config sign; tongban ops config push <城市枢纽>")


@staff_group.command("enable")
@click.option("--id", "staff_id", required=True)
@dir_option
@dry_run_option
@explained
def staff_enable(staff_id: str, fed_dir: Path, dry_run: bool) -> None:
    """Re-enable a disabled staff account."""
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    _commit(fed, draft, fedmod.set_staff_active(draft, staff_id, True), dry_run)


@staff_group.command("list")
@dir_option
@explained
def staff_list(fed_dir: Path) -> None:
    """List staff accounts."""
    draft = FederationDir(fed_dir).load_draft()
    rows = [
        (
            s["id"],
            s["name"],
            s["member"],
            s.get("department") or "-",
            ",".join(s["roles"]),
            "启用" if s["active"] else "停用",
        )
        for s in draft["staff"]
    ]
    click.echo(_table(("id", "姓名", "成员", "部门", "角色", "状态"), rows))


# -- catalog -----------------------------------------------------------------------------


@catalog_group.command("publish")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@dir_option
@dry_run_option
@explained
def catalog_publish(file: Path, fed_dir: Path, dry_run: bool) -> None:
    """Check a catalog YAML file and stage it (replacing the catalog and bundles).

    Every problem is listed with its line; nothing is staged while any remains.
    """
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OpsError(f"读不了 {file}: {exc}") from None
    result = check_catalog(
        text,
        (a["id"] for a in draft["authorities"]),
        (m["id"] for m in draft["members"]),
    )
    for warning in result.warnings:
        click.echo(f"注意: {warning.format(str(file))}", err=True)
    if result.problems:
        for problem in result.problems:
            click.echo(problem.format(str(file)), err=True)
        raise OpsError(f"{file}: {len(result.problems)} 个问题, 目录未暂存 (nothing staged)")
    click.echo(f"{file}: {len(result.matters)} 个事项, {len(result.bundles)} 个一件事, 检查通过")
    _commit(fed, draft, fedmod.set_catalog(draft, result.matters, result.bundles), dry_run)


# -- calendar ----------------------------------------------------------------------------


@calendar_group.command("set")
@click.option("--year", type=int, required=True)
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="YAML with holidays: and workdays: lists, for a year chinese-calendar lacks.",
)
@dir_option
@dry_run_option
@explained
def calendar_set(year: int, file: Path | None, fed_dir: Path, dry_run: bool) -> None:
    """Set one year's holidays and 调休 working days (from chinese-calendar, or --file)."""
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    try:
        if file is None:
            got = from_package(year)
        else:
            got = from_file(file.read_text("utf-8"), year, str(file))
    except CalendarSourceError as exc:
        raise OpsError(str(exc)) from None
    click.echo(
        f"{year} 年: 节假日 {len(got.holidays)} 天, 调休上班 {len(got.workdays)} 天"
        f" (来源 {got.source})"
    )
    _commit(fed, draft, fedmod.set_calendar_year(draft, year, got.holidays, got.workdays), dry_run)


@calendar_group.command("show")
@dir_option
@explained
def calendar_show(fed_dir: Path) -> None:
    """Show the calendar of the draft config."""
    calendar = FederationDir(fed_dir).load_draft()["calendar"]
    for year in calendar["years"]:
        off = [d for d in calendar["holidays"] if d.startswith(f"{year}-")]
        on = [d for d in calendar["workdays"] if d.startswith(f"{year}-")]
        click.echo(f"{year}: 节假日 {', '.join(off) or '-'}")
        click.echo(f"{year}: 调休上班 {', '.join(on) or '-'}")
    if not calendar["years"]:
        click.echo("日历为空: 期限按周一至周五计算")
    click.echo(f"chinese-calendar 已知年份: {known_years()[0]}–{known_years()[-1]}")


# -- peers -------------------------------------------------------------------------------


@peer_group.command("add")
@click.option("--city", help="The partner's 4-digit city code, e.g. 2104 (抚顺).")
@click.option("--name", help="e.g. 抚顺市")
@click.option("--endpoint", help="URL of the partner's city hub.")
@click.option("--root-key", "root_keys", multiple=True, help="Partner root public key (base64url).")
@click.option(
    "--from-config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Take city, name, endpoint and root keys from the partner's signed config file.",
)
@dir_option
@dry_run_option
@explained
def peer_add(
    city: str | None,
    name: str | None,
    endpoint: str | None,
    root_keys: tuple[str, ...],
    from_config: Path | None,
    fed_dir: Path,
    dry_run: bool,
) -> None:
    """Add a metro partner city (都市圈): its root public key and city hub endpoint.

    \b
    Example:
      tongban ops peer add --city 2104 --name 抚顺市 \\
          --endpoint https://hub.fushun.example/ --root-key <抚顺根公钥>
    """
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    at = fedmod.now()
    grants: list[dict[str, Any]] = []
    if from_config is not None:
        signed, _ = fedmod.read_signed_file(from_config)
        config = signed.config
        try:
            signed.verify(g.key for g in config.root_keys)
        except ProtocolError:
            raise OpsError(f"{from_config} 的签名与其中的根密钥不符: 文件可能已损坏") from None
        city = city or config.federation
        if city != config.federation:
            raise OpsError(f"{from_config} 是 {config.federation} 的配置, 不是 {city} 的")
        name = name or config.name
        endpoint = endpoint or config.members[config.federation].endpoint
        grants = [g.to_dict() for g in config.root_keys]
    for text in root_keys:
        try:
            grants.append(fedmod.grant(PublicKey.from_text(text.strip()), at))
        except ProtocolError:
            raise OpsError(
                f"--root-key 不是有效的公钥 (base64url 的 Ed25519 公钥): {text!r}"
            ) from None
    if not city or not name or not endpoint:
        raise OpsError("需要 --city, --name 和 --endpoint (或 --from-config 伙伴的已签发配置)")
    new = fedmod.add_peer(draft, city, name, endpoint, grants)
    for g in grants:
        click.echo(f"伙伴根密钥 kid {g['kid']}: 请与对方运维当面或电话核对")
    _commit(fed, draft, new, dry_run)


@peer_group.command("remove")
@click.option("--city", required=True)
@dir_option
@dry_run_option
@explained
def peer_remove(city: str, fed_dir: Path, dry_run: bool) -> None:
    """Remove a metro partner city."""
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    _commit(fed, draft, fedmod.remove_peer(draft, city), dry_run)


@peer_group.command("list")
@dir_option
@explained
def peer_list(fed_dir: Path) -> None:
    """List metro partner cities."""
    draft = FederationDir(fed_dir).load_draft()
    rows = [
        (p["city"], p["name"], p["endpoint"], " ".join(k["kid"][:12] for k in p["root_keys"]))
        for p in draft["peers"]
    ]
    click.echo(_table(("city", "名称", "endpoint", "根密钥"), rows))


# -- config ------------------------------------------------------------------------------


def _summary(config: FederationConfig, at: datetime) -> list[str]:
    fresh = config.freshness(at)
    left = (config.expires - at).days
    state = {
        Freshness.FRESH: f"有效, 还剩 {left} 天",
        Freshness.STALE: "已过期, 处于宽限期",
        Freshness.EXPIRED: "已过期且超过宽限期",
    }[fresh]
    lines = [
        f"联邦 {config.federation} {config.name} · 序号 serial {config.serial}",
        f"签发 {config.issued.isoformat()} · 到期 {config.expires.isoformat()} ({state})"
        f" · 宽限 {config.grace_days} 天",
        f"成员 {len(config.members)} (枢纽 {sum(m.is_hub for m in config.members.values())})"
        f" · 部门 {len(config.authorities)} · 事项 {len(config.catalog)}"
        f" · 一件事 {len(config.bundles)} · 伙伴 {len(config.peers)}"
        f" · 工作人员 {len(config.staff)} · 吊销 {len(config.revocations)}",
        f"日历年份: {', '.join(map(str, sorted(config.calendar.years))) or '无'}",
    ]
    return lines


def _member_tree(config: FederationConfig) -> list[str]:
    lines: list[str] = []

    def walk(member_id: str, depth: int) -> None:
        m = config.members[member_id]
        lines.append(
            f"{'  ' * depth}{m.id} {m.name} [{m.level}; {','.join(sorted(m.roles))}]"
            + (f" {m.endpoint}" if m.endpoint else "")
        )
        for child in config.children(member_id):
            walk(child.id, depth + 1)

    walk(config.federation, 1)
    return lines


def _verify_note(fed: FederationDir, signed: SignedConfig) -> str:
    try:
        draft = fed.load_draft()
        if draft["federation"] != signed.config.federation:
            raise OpsError("another city's config")
        trusted = [
            PublicKey.from_text(g["public"], g.get("alg", "ed25519")) for g in draft["root_keys"]
        ]
        where = "本联邦根密钥 (federation.json)"
    except OpsError:
        trusted = [g.key for g in signed.config.root_keys]
        where = "配置自身列出的根密钥 (仅自洽检查)"
    try:
        signed.verify(trusted)
    except ProtocolError:
        return f"签名: 无效! 不是由{where}签发的 (kid {signed.sig.kid})"
    return f"签名: 有效, root kid {signed.sig.kid} (对照{where})"


@config_group.command("sign")
@click.option("--expires-days", type=int, default=30, show_default=True)
@passphrase_option
@dir_option
@dry_run_option
@explained
def config_sign(
    expires_days: int, passphrase_file: Path | None, fed_dir: Path, dry_run: bool
) -> None:
    """Sign the draft with the root key as the next serial: signed/<serial>.json, current.json."""
    fed = FederationDir(fed_dir)
    draft = fed.load_draft()
    at = fedmod.now()
    config = fedmod.next_config(fed, draft, at, expires_days)
    serials = fed.signed_serials()
    previous = fed.load_signed(serials[-1])[1]["config"] if serials else None
    if not dry_run:
        passphrase = (
            _read_passphrase(passphrase_file, confirm=False) if fed.root_key_encrypted() else None
        )
        signed = fedmod.sign_draft(fed, draft, fed.load_root_key(passphrase), at, expires_days)
        config = signed.config
    click.echo("\n".join(_summary(config, at)))
    changes = diff_configs(previous, config.to_dict())
    if previous is not None and all(_scalar_name(x) in fedmod.SIGNING_FIELDS for x in changes):
        click.echo(f"内容与 serial {previous['serial']} 相同, 只更新序号和有效期.")
    else:
        click.echo("\n".join(changes))
    for warning in fedmod.warnings_for(config):
        click.echo(f"注意: {warning}")
    if dry_run:
        click.echo("演练 (--dry-run): 未签发.")
        return
    path = fed.write_signed(signed)
    click.echo(f"已签发 serial {signed.serial}: {path}, {fed.current_path}")
    click.echo("发布: tongban ops config push <城市枢纽地址>")


def _scalar_name(line: str) -> str:
    """The field a top-level diff line is about (``~ serial: 1 → 2`` → ``serial``)."""
    return line[2:].split(":", 1)[0] if line[:2] in {"+ ", "- ", "~ "} else ""


def _load_operand(fed: FederationDir, operand: str) -> tuple[str, dict[str, Any]]:
    """A config object named by serial, ``current``, ``draft`` or a file path."""
    if operand == "draft":
        return "草稿 draft", fed.load_draft()
    if operand == "current":
        signed, obj = fed.load_signed()
        return f"serial {signed.serial}", obj["config"]
    if operand.isdigit():
        signed, obj = fed.load_signed(int(operand))
        return f"serial {signed.serial}", obj["config"]
    path = Path(operand)
    if path.is_file():
        signed, obj = fedmod.read_signed_file(path)
        return f"{path} (serial {signed.serial})", obj["config"]
    raise OpsError(f"{operand!r} 既不是序号、current、draft, 也不是文件")


@config_group.command("show")
@click.option("--serial", type=int, help="A signed serial (default: current.json).")
@click.option(
    "--file", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="A signed file."
)
@click.option("--json", "as_json", is_flag=True, help="Print the signed JSON itself.")
@click.option("--catalog", "with_catalog", is_flag=True, help="Also list every matter.")
@dir_option
@explained
def config_show(
    serial: int | None, file: Path | None, as_json: bool, with_catalog: bool, fed_dir: Path
) -> None:
    """Show a signed config: summary, signature check, members, authorities, catalog."""
    fed = FederationDir(fed_dir)
    signed, obj = fedmod.read_signed_file(file) if file else fed.load_signed(serial)
    if as_json:
        click.echo(json.dumps(obj, ensure_ascii=False, indent=2))
        return
    config = signed.config
    click.echo("\n".join(_summary(config, fedmod.now())))
    click.echo(_verify_note(fed, signed))
    click.echo("成员:")
    click.echo("\n".join(_member_tree(config)))
    click.echo("部门:")
    for a in sorted(config.authorities.values(), key=lambda a: a.id):
        click.echo(f"  {a.id} {a.name} (签章密钥 {len(a.seal_keys)})")
    if config.peers:
        click.echo("都市圈伙伴:")
        for p in config.peers.values():
            click.echo(f"  {p.city} {p.name} {p.endpoint}")
    if with_catalog:
        rows = [
            (
                m.code,
                m.name,
                m.authority,
                m.level,
                m.kind,
                f"{m.promise_days}/{m.legal_days}",
                m.scope,
                "独任" if m.single_reviewer else "→".join(s.name for s in m.steps),
            )
            for m in config.catalog.values()
        ]
        click.echo(
            _table(("编码", "事项", "部门", "层级", "类型", "承诺/法定", "范围", "审批"), rows)
        )
    else:
        click.echo(f"事项 {len(config.catalog)} 个 (--catalog 列出)")


@config_group.command("diff")
@click.argument("a", required=False)
@click.argument("b", required=False)
@dir_option
@explained
def config_diff(a: str | None, b: str | None, fed_dir: Path) -> None:
    """Compare two configs: A and B are serials, `current`, `draft` or signed files.

    Without arguments: the previous signed config against the current one; with one: A
    against the current one. `config diff current draft` shows what is not signed yet.
    """
    fed = FederationDir(fed_dir)
    if a is None:
        serials = fed.signed_serials()
        if not serials:
            raise OpsError("还没有签发过配置")
        older: tuple[str, dict[str, Any] | None] = (
            _load_operand(fed, str(serials[-2])) if len(serials) > 1 else ("(无)", None)
        )
        newer = _load_operand(fed, str(serials[-1]))
    else:
        older = _load_operand(fed, a)
        newer = _load_operand(fed, b or "current")
    click.echo(f"--- {older[0]}\n+++ {newer[0]}")
    lines = diff_configs(older[1], newer[1])
    if "draft" in (a, b):  # the draft has no serial, issued, expires: not a difference
        lines = [line for line in lines if _scalar_name(line) not in fedmod.SIGNING_FIELDS]
    click.echo("\n".join(lines) if lines else "没有差别 (no difference).")


@config_group.command("push")
@click.argument("hub_url", metavar="HUB_URL")
@click.option("--serial", type=int, help="Push this signed serial (default: current.json).")
@click.option("--timeout", type=float, default=30.0, show_default=True)
@click.option("--no-gzip", is_flag=True, help="Send the body uncompressed.")
@dir_option
@explained
def config_push(
    hub_url: str, serial: int | None, timeout: float, no_gzip: bool, fed_dir: Path
) -> None:
    """Publish a signed config to a hub (POST /v1/config) and print its answer.

    \b
    Example:
      tongban ops config push http://127.0.0.1:8400/
    """
    from .push import PushFailed, push_config_sync  # aiohttp: only this command needs it

    signed, obj = FederationDir(fed_dir).load_signed(serial)
    try:
        answer = push_config_sync(hub_url, obj, seconds=timeout, use_gzip=not no_gzip)
    except PushFailed as exc:
        raise OpsError(str(exc)) from None
    shown = (
        json.dumps(answer.body, ensure_ascii=False)
        if not isinstance(answer.body, str)
        else answer.body
    )
    if not answer.ok:
        reason = answer.body.get("error") if isinstance(answer.body, dict) else None
        raise OpsError(
            f"枢纽拒绝了 serial {signed.serial}: HTTP {answer.status}"
            + (f" {reason}" if reason else "")
            + f": {shown}"
        )
    click.echo(f"已发布 serial {signed.serial} → {hub_url}: HTTP {answer.status}")
    click.echo(shown)
