"""The operator directory: the draft federation config, the root key, every signed config.

Layout (docs/architecture.md, "Data directories")::

    <dir>/root.key              the city root key: PKCS#8 PEM, encrypted with a passphrase, 0600
    <dir>/federation.json       the draft ``config`` object being edited (no serial/issued/expires)
    <dir>/signed/<serial>.json  every config ever signed, as it travels ({"config", "sig"})
    <dir>/current.json          a copy of the newest signed config

Theory of operation: every operator command loads the draft, computes a new draft with one of
the pure functions below (``approve_member``, ``add_staff``, …), shows the difference and,
unless it is a dry run, writes the draft back atomically. Each item is validated by the same
protocol class that will parse it in the signed config (``Member``, ``Authority``, ``Staff``,
``Peer``, ``Calendar``), so a bad item is refused at the command that adds it. Only
``config sign`` turns the draft into a signed config: ``serial`` is the last signed serial + 1,
``issued`` now, ``expires`` a number of days later, and the whole is checked by
:meth:`protocol.config.FederationConfig.parse` before the root key signs it.

Refusals are :class:`OpsError` with a message for the operator (shown in Chinese, the
operator's language); the CLI turns them into an error exit.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from protocol.config import (
    Authority,
    FederationConfig,
    KeyGrant,
    Member,
    Peer,
    SignedConfig,
    Staff,
    parse_signed,
    sign_config,
)
from protocol.encoding import loads_strict
from protocol.enrol import Enrolment
from protocol.errors import ProtocolError
from protocol.event import check_ts
from protocol.ids import DEPT_RE, MEMBER_RE, city_of, is_within, level_of
from protocol.keys import KeyPair, PublicKey
from protocol.workdays import Calendar

CST = timezone(timedelta(hours=8))
#: Fields of the signed config that ``config sign`` sets; the draft does not hold them.
SIGNING_FIELDS = ("serial", "issued", "expires")
DEFAULT_GRACE_DAYS = 30
LIST_FIELDS = (
    "root_keys",
    "members",
    "revocations",
    "authorities",
    "catalog",
    "bundles",
    "peers",
    "staff",
)
_SERIAL_FILE = re.compile(r"^([1-9][0-9]*)\.json\Z")


class OpsError(Exception):
    """A refusal explained to the operator; nothing was changed."""


def now() -> datetime:
    """The operator's clock: local China time to the second (tests replace this)."""
    return datetime.now(CST).replace(microsecond=0)


def _iso(at: datetime) -> str:
    return at.isoformat()


def _protocol(what: str, exc: ProtocolError) -> OpsError:
    return OpsError(f"{what}: {exc.detail or exc.reason} ({exc.reason})")


def grant(key: PublicKey, valid_from: datetime) -> dict[str, Any]:
    """The config form of a key granted from ``valid_from`` with no end."""
    return KeyGrant(key, valid_from).to_dict()


# -- the draft ---------------------------------------------------------------------------


def new_draft(
    city: str, name: str, root: PublicKey, at: datetime, calendar: Calendar
) -> dict[str, Any]:
    """The draft of a new federation: the root key and calendar, nobody enrolled yet."""
    if not (len(city) == 4 and city.isascii() and city.isdigit()):
        raise OpsError(f"城市代码应为 4 位数字 (如 2101 沈阳), 而不是 {city!r}")
    if not name.strip() or len(name) > 200:
        raise OpsError("联邦名称 (--name) 不能为空, 且不超过 200 字")
    return {
        "federation": city,
        "name": name.strip(),
        "grace_days": DEFAULT_GRACE_DAYS,
        "root_keys": [grant(root, at)],
        "members": [],
        "revocations": [],
        "authorities": [],
        "catalog": [],
        "bundles": [],
        "peers": [],
        "calendar": calendar.to_dict(),
        "staff": [],
    }


def _index(items: Iterable[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(item[key]): dict(item) for item in items}


def _sorted_items(index: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [index[k] for k in sorted(index)]


def _parent_for(members: Mapping[str, Mapping[str, Any]], member_id: str) -> str | None:
    """The nearest enrolled hub whose code lies above ``member_id``."""
    above = [
        m
        for m, obj in members.items()
        if m != member_id and is_within(member_id, m) and "hub" in obj.get("roles", [])
    ]
    return max(above, key=len) if above else None


def approve_member(
    draft: Mapping[str, Any],
    enrolment: Enrolment,
    at: datetime,
    *,
    name: str | None = None,
    parent: str | None = None,
    endpoint: str | None = None,
    also_station: bool = False,
    authority_names: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Add the member of a verified enrolment request; returns the new draft and notes.

    The member's key is valid from ``at``. A hub's seal keys become its authorities
    ``<id>:<dept>`` (an authority already added by name keeps its name unless
    ``authority_names`` gives one).
    """
    new = copy.deepcopy(dict(draft))
    city = new["federation"]
    notes: list[str] = []
    members = _index(new["members"], "id")
    mid = enrolment.id
    if city_of(mid) != city:
        raise OpsError(f"{mid} 不属于本联邦 {city} ({new['name']}); 请核对申请")
    if mid in members:
        raise OpsError(f"成员 {mid} ({members[mid]['name']}) 已经入网, 不能重复批准")
    for other in members.values():
        for key in other.get("keys", []):
            if key.get("public") == enrolment.public.to_text():
                raise OpsError(f"这把密钥已属于成员 {other['id']}: 每个成员须有自己的密钥")
    if mid == city:
        if enrolment.role != "hub":
            raise OpsError(f"城市 {city} 的成员必须是枢纽 (hub), 申请写的是 {enrolment.role}")
        if parent is not None:
            raise OpsError(f"城市枢纽 {city} 没有上级, 不要给 --parent")
        chosen_parent = None
    else:
        if city not in members:
            raise OpsError(f"城市枢纽 {city} 尚未入网: 先批准城市枢纽的入网申请, 再批准 {mid}")
        chosen_parent = parent or enrolment.parent or _parent_for(members, mid)
        if chosen_parent is None:  # pragma: no cover - the city hub is always above
            raise OpsError(f"{mid} 没有可用的上级枢纽; 用 --parent 指定")
        if parent is None and enrolment.parent is None:
            notes.append(f"申请未写上级, 取最近的已入网枢纽 {chosen_parent}")
        above = members.get(chosen_parent)
        if above is None:
            raise OpsError(f"上级 {chosen_parent} 还不是联邦成员: 先批准它的入网申请")
        if "hub" not in above["roles"]:
            raise OpsError(f"上级 {chosen_parent} 不是枢纽 (hub), 不能有下级成员")
    roles = {enrolment.role}
    if also_station:
        if enrolment.role != "hub":
            raise OpsError("--station 只用于兼有窗口的枢纽 (hub)")
        roles.add("station")
    # The key is valid from when it was made, not from approval: a new station accepts
    # applications offline before the operator gets to its request, and hops further up
    # check relayed events against the key's validity at the event's time.
    created = check_ts(enrolment.created)
    since = min(at, created)
    obj = {
        "id": mid,
        "name": name or enrolment.name,
        "level": level_of(mid),
        "parent": chosen_parent,
        "endpoint": endpoint or enrolment.endpoint,
        "roles": sorted(roles),
        "keys": [grant(enrolment.public, since)],
    }
    try:
        Member.parse(obj, f"member {mid}")
    except ProtocolError as exc:
        raise _protocol(f"成员 {mid} 无效", exc) from None
    if "hub" in roles and not obj["endpoint"]:
        notes.append(f"枢纽 {mid} 没有 endpoint: 下级成员将无法与它同步 (用 --endpoint 补上)")
    members[mid] = obj
    new["members"] = _sorted_items(members)

    names = dict(authority_names or {})
    unused = set(names) - set(enrolment.seal_keys)
    if unused:
        raise OpsError(f"--authority-name 给了申请中没有的部门: {', '.join(sorted(unused))}")
    authorities = _index(new["authorities"], "id")
    for dept, seal in sorted(enrolment.seal_keys.items()):
        aid = f"{mid}:{dept}"
        existing = authorities.get(aid)
        if existing is None:
            authorities[aid] = {"id": aid, "name": names.get(dept, dept), "seal_keys": []}
            notes.append(f"新增部门 {aid} ({authorities[aid]['name']})")
        elif dept in names:
            existing["name"] = names[dept]
        auth = authorities[aid]
        if all(k.get("public") != seal.to_text() for k in auth["seal_keys"]):
            auth["seal_keys"] = [*auth["seal_keys"], grant(seal, since)]
        _check_authority(auth)
    new["authorities"] = _sorted_items(authorities)
    return new, notes


def _check_authority(obj: Mapping[str, Any]) -> None:
    try:
        Authority.parse(obj, f"authority {obj.get('id')}")
    except ProtocolError as exc:
        raise _protocol(f"部门 {obj.get('id')} 无效", exc) from None


def add_authority(
    draft: Mapping[str, Any], authority_id: str, name: str
) -> tuple[dict[str, Any], list[str]]:
    """Name an authority (department at a hub) before or after its hub's seal key arrives."""
    new = copy.deepcopy(dict(draft))
    authorities = _index(new["authorities"], "id")
    if authority_id in authorities:
        raise OpsError(
            f"部门 {authority_id} 已存在 ({authorities[authority_id]['name']}); "
            "改名用 `tongban ops authority rename`"
        )
    member, sep, dept = authority_id.partition(":")
    if not sep or not MEMBER_RE.match(member) or not DEPT_RE.match(dept):
        raise OpsError(f"部门应写作 <枢纽代码>:<部门代码> (如 2101:sfj), 而不是 {authority_id!r}")
    obj: dict[str, Any] = {"id": authority_id, "name": name, "seal_keys": []}
    _check_authority(obj)
    notes = []
    host = _index(new["members"], "id").get(authority_id.split(":", 1)[0])
    if host is None:
        notes.append(
            f"{authority_id} 所在的枢纽尚未入网; 批准它的入网申请 (含 {authority_id.split(':')[1]}"
            " 的签章密钥) 之前, 签发配置会失败"
        )
    elif "hub" not in host["roles"]:
        raise OpsError(f"{host['id']} 不是枢纽, 不能设部门")
    else:
        notes.append(f"{authority_id} 还没有签章密钥: 结果文书无法签章, 直到枢纽提交该部门的密钥")
    authorities[authority_id] = obj
    new["authorities"] = _sorted_items(authorities)
    return new, notes


def entrust_seal_keys(
    draft: Mapping[str, Any], authority_id: str, keys: Iterable[PublicKey], at: datetime
) -> dict[str, Any]:
    """List seal keys an authority entrusts to windows (印章授权使用, for delegated 即办
    matters) among its ``seal_keys``, valid from ``at``."""
    new = copy.deepcopy(dict(draft))
    authorities = _index(new["authorities"], "id")
    auth = authorities.get(authority_id)
    if auth is None:
        raise OpsError(f"没有部门 {authority_id}; 先批准其枢纽的入网申请或 `authority add`")
    auth["seal_keys"] = [*auth["seal_keys"], *(grant(k, at) for k in keys)]
    new["authorities"] = _sorted_items(authorities)
    return new


def rename_authority(draft: Mapping[str, Any], authority_id: str, name: str) -> dict[str, Any]:
    """Change an authority's display name."""
    new = copy.deepcopy(dict(draft))
    authorities = _index(new["authorities"], "id")
    if authority_id not in authorities:
        raise OpsError(f"没有部门 {authority_id}")
    authorities[authority_id]["name"] = name
    _check_authority(authorities[authority_id])
    new["authorities"] = _sorted_items(authorities)
    return new


def remove_authority(draft: Mapping[str, Any], authority_id: str) -> dict[str, Any]:
    """Remove an authority (its matters and staff must go first, or signing refuses)."""
    new = copy.deepcopy(dict(draft))
    authorities = _index(new["authorities"], "id")
    if authority_id not in authorities:
        raise OpsError(f"没有部门 {authority_id}")
    member, dept = authority_id.split(":", 1)
    staff = [s["id"] for s in new["staff"] if (s["member"], s["department"]) == (member, dept)]
    if staff:
        raise OpsError(f"部门 {authority_id} 还有工作人员 {', '.join(staff)}: 先停用或调走")
    del authorities[authority_id]
    new["authorities"] = _sorted_items(authorities)
    return new


def add_staff(
    draft: Mapping[str, Any],
    staff_id: str,
    name: str,
    member: str,
    department: str | None,
    roles: Iterable[str],
) -> dict[str, Any]:
    """Add a staff account (reviewer, clerk…) working at a member, in a department."""
    new = copy.deepcopy(dict(draft))
    staff = _index(new["staff"], "id")
    if staff_id in staff:
        raise OpsError(f"工作人员 {staff_id} 已存在 ({staff[staff_id]['name']})")
    if member not in _index(new["members"], "id"):
        raise OpsError(f"{member} 不是联邦成员: 先批准它的入网申请")
    if department is not None:
        if not DEPT_RE.match(department):
            raise OpsError(f"部门代码应为小写字母 (如 sfj), 而不是 {department!r}")
        if f"{member}:{department}" not in _index(new["authorities"], "id"):
            raise OpsError(
                f"{member} 没有部门 {department} (先 authority add {member}:{department})"
            )
    role_list = list(dict.fromkeys(roles))
    if not role_list:
        raise OpsError("至少给一个 --role (如 reviewer, signer, clerk)")
    obj = {
        "id": staff_id,
        "name": name,
        "member": member,
        "department": department,
        "roles": role_list,
        "active": True,
    }
    try:
        Staff.parse(obj, f"staff {staff_id}")
    except ProtocolError as exc:
        raise _protocol(f"工作人员 {staff_id} 无效", exc) from None
    staff[staff_id] = obj
    new["staff"] = _sorted_items(staff)
    return new


def set_staff_active(
    draft: Mapping[str, Any], staff_id: str, active: bool, at: datetime | None = None
) -> dict[str, Any]:
    """Disable (from ``at``) or re-enable a staff account; the record stays for its history.

    ``disabled_at`` keeps what the account signed before ``at`` valid when members refold
    their cases under the new config.
    """
    new = copy.deepcopy(dict(draft))
    staff = _index(new["staff"], "id")
    if staff_id not in staff:
        raise OpsError(f"没有工作人员 {staff_id}")
    if staff[staff_id]["active"] == active:
        raise OpsError(f"工作人员 {staff_id} 已经是{'启用' if active else '停用'}状态")
    staff[staff_id]["active"] = active
    if active:
        staff[staff_id].pop("disabled_at", None)
    else:
        staff[staff_id]["disabled_at"] = _iso(now() if at is None else at)
    new["staff"] = _sorted_items(staff)
    return new


def reset_staff_password(
    draft: Mapping[str, Any], staff_id: str, password_hash: str, at: datetime
) -> dict[str, Any]:
    """Stage a password reset: department and roles stay; the hub takes the new hash at the
    staff member's next login (``Staff.password_reset``)."""
    new = copy.deepcopy(dict(draft))
    staff = _index(new["staff"], "id")
    entry = staff.get(staff_id)
    if entry is None:
        raise OpsError(f"没有工作人员 {staff_id}")
    if not entry["active"]:
        raise OpsError(f"工作人员 {staff_id} 已停用: 先 `staff enable --id {staff_id}` 再重置密码")
    members = _index(new["members"], "id")
    if "hub" not in members.get(entry["member"], {}).get("roles", []):
        raise OpsError(
            f"{staff_id} 在站点 {entry['member']} 工作: 站点账号的密码在站点上用"
            " `tongban node passwd` 重置"
        )
    entry["password_reset"] = {"at": _iso(at), "hash": password_hash}
    new["staff"] = _sorted_items(staff)
    return new


# -- revocation and key rotation -------------------------------------------------------------


def revoke_member(
    draft: Mapping[str, Any], member_id: str, at: datetime, reason: str
) -> tuple[dict[str, Any], list[str]]:
    """Revoke every key of a member from ``at`` (DESIGN.md §3): what it signed before stays
    valid; its requests and later events are refused. The member stays listed."""
    new = copy.deepcopy(dict(draft))
    members = _index(new["members"], "id")
    if member_id not in members:
        raise OpsError(f"{member_id} 不是联邦成员")
    if member_id == new["federation"]:
        raise OpsError(
            f"不能吊销城市枢纽 {member_id}: 它的密钥泄露时用 `member rotate-key` 换新密钥"
        )
    for existing in new.get("revocations", []):
        if existing["member"] == member_id and existing.get("kid") is None:
            raise OpsError(f"{member_id} 已于 {existing['revoked_at']} 吊销")
    notes = [
        f"{c['id']} ({c['name']}) 的上级 {member_id} 被吊销: 它将无法同步, 请为它另选上级"
        for c in members.values()
        if c.get("parent") == member_id
    ]
    if at > now():
        notes.append(f"吊销将在 {_iso(at)} 生效")
    new["revocations"] = [
        *new.get("revocations", []),
        {"member": member_id, "kid": None, "revoked_at": _iso(at), "reason": reason},
    ]
    return new, notes


def rotate_member_key(
    draft: Mapping[str, Any],
    member_id: str,
    key: PublicKey,
    at: datetime,
    seal_keys: Mapping[str, PublicKey] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Give a member a new key from ``at``: its current keys end at ``at`` (still listed, so
    what they signed before verifies). A hub's new seal keys rotate its authorities alike."""
    new = copy.deepcopy(dict(draft))
    members = _index(new["members"], "id")
    member = members.get(member_id)
    if member is None:
        raise OpsError(f"{member_id} 不是联邦成员: 新成员用 `member approve`")
    for revocation in new.get("revocations", []):
        if revocation["member"] == member_id and revocation.get("kid") is None:
            raise OpsError(f"{member_id} 已被吊销, 不能换密钥 (重新入网需新的成员编号后缀)")
    text = key.to_text()
    for other in members.values():
        if any(k.get("public") == text for k in other.get("keys", [])):
            raise OpsError(f"这把密钥已属于成员 {other['id']}: 换密钥须用新生成的密钥")
    notes = []
    for grant_obj in member["keys"]:
        if grant_obj.get("valid_until") is None:
            if datetime.fromisoformat(grant_obj["valid_from"]) >= at:
                raise OpsError(
                    f"旧密钥 {grant_obj['kid'][:12]} 在 {_iso(at)} 之后才生效, 不能在此时换"
                )
            grant_obj["valid_until"] = _iso(at)
            notes.append(f"旧密钥 {grant_obj['kid'][:12]} 有效至 {_iso(at)} (此前签的仍可验证)")
    member["keys"] = [*member["keys"], grant(key, at)]
    try:
        Member.parse(member, f"member {member_id}")
    except ProtocolError as exc:
        raise _protocol(f"成员 {member_id} 无效", exc) from None
    new["members"] = _sorted_items(members)
    authorities = _index(new["authorities"], "id")
    for dept, seal in sorted((seal_keys or {}).items()):
        auth = authorities.get(f"{member_id}:{dept}")
        if auth is None:
            raise OpsError(
                f"{member_id} 没有部门 {dept}: 新部门用 `member approve` 或 `authority add`"
            )
        for old in auth["seal_keys"]:
            if old.get("valid_until") is None:
                old["valid_until"] = _iso(at)
        auth["seal_keys"] = [*auth["seal_keys"], grant(seal, at)]
        _check_authority(auth)
        notes.append(f"部门 {auth['id']} 换用新签章密钥 {seal.kid[:12]}")
    new["authorities"] = _sorted_items(authorities)
    return new, notes


def set_calendar_year(
    draft: Mapping[str, Any], year: int, holidays: Iterable[date], workdays: Iterable[date]
) -> dict[str, Any]:
    """Replace one year of the working-day calendar (holidays and 调休 working weekend days)."""
    new = copy.deepcopy(dict(draft))
    old = Calendar.from_dict(new["calendar"])
    days_off, days_on = frozenset(holidays), frozenset(workdays)
    stray = sorted(d for d in days_off | days_on if d.year != year)
    if stray:
        raise OpsError(f"{stray[0]} 不在 {year} 年内")
    try:
        calendar = Calendar(
            years=old.years | {year},
            holidays=frozenset(d for d in old.holidays if d.year != year) | days_off,
            workdays=frozenset(d for d in old.workdays if d.year != year) | days_on,
        )
    except ProtocolError as exc:
        raise _protocol(f"{year} 年日历无效", exc) from None
    new["calendar"] = calendar.to_dict()
    return new


def add_peer(
    draft: Mapping[str, Any], city: str, name: str, endpoint: str, root_keys: list[dict[str, Any]]
) -> dict[str, Any]:
    """Add a metro partner city (都市圈通办): its root keys and city hub endpoint."""
    new = copy.deepcopy(dict(draft))
    if city == new["federation"]:
        raise OpsError("本市不能是自己的都市圈伙伴")
    if not endpoint.startswith(("http://", "https://")):
        raise OpsError(f"endpoint 应为 http(s) 地址, 而不是 {endpoint!r}")
    peers = _index(new["peers"], "city")
    if city in peers:
        raise OpsError(f"{city} ({peers[city]['name']}) 已是伙伴; 先 peer remove --city {city}")
    obj = {"city": city, "name": name, "endpoint": endpoint, "root_keys": root_keys}
    if not root_keys:
        raise OpsError("至少给一把伙伴城市的根公钥 (--root-key)")
    try:
        Peer.parse(obj, f"peer {city}")
    except ProtocolError as exc:
        raise _protocol(f"伙伴 {city} 无效", exc) from None
    peers[city] = obj
    new["peers"] = _sorted_items(peers)
    return new


def remove_peer(draft: Mapping[str, Any], city: str) -> dict[str, Any]:
    """Remove a metro partner city."""
    new = copy.deepcopy(dict(draft))
    peers = _index(new["peers"], "city")
    if city not in peers:
        raise OpsError(f"{city} 不是都市圈伙伴")
    del peers[city]
    new["peers"] = _sorted_items(peers)
    return new


def set_catalog(
    draft: Mapping[str, Any], catalog: list[dict[str, Any]], bundles: list[dict[str, Any]]
) -> dict[str, Any]:
    """Stage a whole catalog (matters and bundles), replacing the previous one."""
    new = copy.deepcopy(dict(draft))
    new["catalog"] = catalog
    new["bundles"] = bundles
    return new


# -- signing -----------------------------------------------------------------------------


def build_config(
    draft: Mapping[str, Any], serial: int, issued: datetime, expires: datetime
) -> FederationConfig:
    """The config the draft describes, fully validated (OpsError says what is wrong)."""
    city = draft.get("federation")
    if city not in {m.get("id") for m in draft.get("members", [])}:
        raise OpsError(
            f"城市枢纽 {city} 尚未入网, 还不能签发配置: 先 `tongban ops member approve "
            "<城市枢纽的入网申请>` (或 federation init --hub-enrolment)"
        )
    enrolled = {m.get("id") for m in draft.get("members", [])}
    waiting = [
        a["id"] for a in draft.get("authorities", []) if a["id"].split(":")[0] not in enrolled
    ]
    if waiting:
        raise OpsError(
            f"部门 {', '.join(waiting)} 所在的枢纽尚未入网, 还不能签发: 先批准该枢纽的入网申请,"
            " 或 `tongban ops authority remove <部门>`"
        )
    body = {k: v for k, v in draft.items() if k not in SIGNING_FIELDS}
    body.update(serial=serial, issued=_iso(issued), expires=_iso(expires))
    try:
        return FederationConfig.parse(body)
    except ProtocolError as exc:
        raise _protocol("配置无效, 未签发", exc) from None


def warnings_for(config: FederationConfig) -> list[str]:
    """Things a signed config allows but an operator should know about."""
    out = []
    for authority in config.authorities.values():
        if not authority.seal_keys:
            out.append(f"部门 {authority.id} ({authority.name}) 没有签章密钥: 其结果文书无法签章")
    for member in config.members.values():
        if member.is_hub and not member.endpoint:
            out.append(f"枢纽 {member.id} 没有 endpoint: 下级无法同步")
    unknown = config.calendar.unknown_years(config.issued.date(), config.expires.date())
    for year in unknown:
        out.append(f"日历不含 {year} 年: 期限按周一至周五计算 (calendar set --year {year})")
    return out


# -- the directory -----------------------------------------------------------------------


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a synced temp file and rename, so a crash leaves the old or the new file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (never overwrite) with ``mode`` from the first byte, then sync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


@dataclass(frozen=True)
class FederationDir:
    """An operator directory (see the module docstring)."""

    path: Path

    @property
    def root_key_path(self) -> Path:
        return self.path / "root.key"

    @property
    def draft_path(self) -> Path:
        return self.path / "federation.json"

    @property
    def signed_dir(self) -> Path:
        return self.path / "signed"

    @property
    def current_path(self) -> Path:
        return self.path / "current.json"

    def create(self, draft: Mapping[str, Any], root: KeyPair, passphrase: bytes | None) -> None:
        """Write a new directory: root key (0600), draft, an empty ``signed/``."""
        if self.root_key_path.exists() or self.draft_path.exists():
            raise OpsError(f"{self.path} 已经有联邦 (root.key 或 federation.json 已存在), 未改动")
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.signed_dir.mkdir(exist_ok=True)
        _write_new(self.root_key_path, root.to_file_bytes(passphrase), 0o600)
        _write_atomic(self.draft_path, _dump(draft))

    def load_draft(self) -> dict[str, Any]:
        """The draft config object (OpsError when there is no federation here)."""
        if not self.draft_path.exists():
            raise OpsError(
                f"{self.path} 下没有联邦 (缺 federation.json): 先 `tongban ops federation init`,"
                " 或用 --dir / TONGBAN_FED_DIR 指向联邦目录"
            )
        try:
            draft = loads_strict(self.draft_path.read_bytes())
        except ProtocolError as exc:
            raise _protocol(f"{self.draft_path} 不是有效的 JSON", exc) from None
        if not isinstance(draft, dict) or "federation" not in draft:
            raise OpsError(f"{self.draft_path} 不是联邦草稿")
        for key in LIST_FIELDS:
            if not isinstance(draft.setdefault(key, []), list):
                raise OpsError(f"{self.draft_path}: {key} 应为列表")
        draft.setdefault("calendar", {"years": [], "holidays": [], "workdays": []})
        return draft

    def save_draft(self, draft: Mapping[str, Any]) -> None:
        _write_atomic(self.draft_path, _dump(draft))

    def draft_bytes(self) -> bytes:
        return self.draft_path.read_bytes()

    def root_key_encrypted(self) -> bool:
        return b"ENCRYPTED" in self.root_key_path.read_bytes()

    def load_root_key(self, passphrase: bytes | None) -> KeyPair:
        """The root key; a wrong passphrase is refused."""
        if not self.root_key_path.exists():
            raise OpsError(f"缺根密钥 {self.root_key_path} (根密钥应离线保存, 签发时放回此处)")
        try:
            return KeyPair.from_file_bytes(self.root_key_path.read_bytes(), passphrase)
        except ProtocolError:
            raise OpsError("根密钥口令错误, 或 root.key 已损坏; 未签发") from None

    def signed_serials(self) -> list[int]:
        if not self.signed_dir.is_dir():
            return []
        found = (_SERIAL_FILE.match(p.name) for p in self.signed_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def load_signed(self, serial: int | None = None) -> tuple[SignedConfig, dict[str, Any]]:
        """A signed config by serial (default: current.json) and its JSON object."""
        path = self.current_path if serial is None else self.signed_dir / f"{serial}.json"
        if not path.exists():
            if serial is None:
                raise OpsError("还没有签发过配置: 先 `tongban ops config sign`")
            raise OpsError(f"没有序号为 {serial} 的已签发配置 (有: {self.signed_serials()})")
        return read_signed_file(path)

    def write_signed(self, signed: SignedConfig) -> Path:
        """Keep ``signed/<serial>.json`` (never overwritten) and update ``current.json``."""
        self.signed_dir.mkdir(exist_ok=True)
        data = _dump(signed.to_dict())
        path = self.signed_dir / f"{signed.serial}.json"
        try:
            _write_new(path, data, 0o644)
        except FileExistsError:
            raise OpsError(f"{path} 已存在: 序号 {signed.serial} 已签发过") from None
        _write_atomic(self.current_path, data)
        return path


def read_signed_file(path: Path) -> tuple[SignedConfig, dict[str, Any]]:
    """Parse a signed config file (shape only; verify with the root keys separately)."""
    try:
        obj = loads_strict(path.read_bytes())
        return parse_signed(obj), obj
    except OSError as exc:
        raise OpsError(f"读不了 {path}: {exc.strerror}") from None
    except ProtocolError as exc:
        raise _protocol(f"{path} 不是有效的已签发配置", exc) from None


def sign_draft(
    fed: FederationDir, draft: Mapping[str, Any], root: KeyPair, at: datetime, days: int
) -> SignedConfig:
    """Sign the draft as the next serial, issued ``at``, expiring ``days`` later."""
    config = next_config(fed, draft, at, days)
    if config.root_key(root.kid) is not None and config.root_key(root.kid, at) is None:
        # Members accept a config only from a root key valid when it was issued.
        raise OpsError(f"根密钥 {root.kid} 在 {_iso(at)} 不在有效期内, 未签发")
    try:
        return sign_config(config, root)
    except ProtocolError as exc:
        raise OpsError("root.key 不是本联邦配置中的根密钥, 未签发") from exc


def next_config(
    fed: FederationDir, draft: Mapping[str, Any], at: datetime, days: int
) -> FederationConfig:
    """The config the next ``config sign`` would produce (validated, not signed)."""
    if days < 1:
        raise OpsError("--expires-days 至少为 1")
    serials = fed.signed_serials()
    if serials and fed.current_path.exists():
        current, _ = fed.load_signed()
        if current.serial != serials[-1]:
            raise OpsError(
                f"current.json 的序号 {current.serial} 不是最新的已签发序号"
                f" {serials[-1]}; 请检查目录"
            )
        if at < current.config.issued:
            raise OpsError(
                f"本机时间 {_iso(at)} 早于上次签发时间 {_iso(current.config.issued)}: 请校准时钟"
            )
    return build_config(draft, (serials[-1] if serials else 0) + 1, at, at + timedelta(days=days))


def new_root_key() -> KeyPair:
    """A fresh root key from the operating system's randomness."""
    return KeyPair.generate(secrets.token_bytes(32))
