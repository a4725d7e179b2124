"""The federation config (DESIGN.md §3): who is in the federation and what the catalog says.

A city's operator signs a versioned document with the city **root key**; it flows down the
tree on every sync. Wire form::

    {"config": {"federation": "2101", "name": "沈阳市", "serial": 7, "issued": "...",
                "expires": "...", "grace_days": 30, "root_keys": [...], "members": [...],
                "revocations": [...], "authorities": [...], "catalog": [...], "bundles": [...],
                "peers": [...], "calendar": {...}, "staff": [...]},
     "sig": {"kid": "...", "alg": "ed25519", "val": "..."}}

The signature is Ed25519 over the RFC 8785 bytes of the ``config`` object. Trust: a member is
given the root public key out of band at enrolment; a newer config is accepted only with a
higher serial and a signature by a root key listed in the config it already trusts (so the
root key can be rotated by listing the new key first). Metro peers (都市圈) are other cities'
root keys and endpoints; their own signed configs are verified against those keys and joined
into a :class:`Federation` view for routing and verification across cities.

Staleness never stops a village: past ``expires`` the config is *stale* (warn, keep
accepting) until ``grace_days`` more have passed, then *expired* (warn loudly, still accept:
the decision to stop is the operator's, by revocation, not the clock's).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

from .encoding import b64url_decode, canonical, check_json_value, loads_strict
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .event import Signature, check_ts
from .ids import (
    DEPT_RE,
    LEVEL_ORDER,
    check_address,
    check_member_id,
    city_of,
    department_of,
    division,
    is_within,
    level_of,
    member_of,
)
from .keys import ALG_ED25519, KeyPair, PublicKey
from .workdays import Calendar

MatterKind = Literal["即办件", "承诺件"]
Scope = Literal["district", "city", "metro"]
MATTER_TYPES = frozenset(f"{n:02d}" for n in range(1, 21))
KINDS = ("即办件", "承诺件")
SCOPES = ("district", "city", "metro")
DECIDING_LEVELS = ("city", "district", "township")
UNITS = ("工作日", "自然日")
ROLES = frozenset({"hub", "station"})


def _err(reason: str, detail: str) -> LocalProtocolError:
    return LocalProtocolError(reason, detail)


def _str(obj: Mapping[str, Any], key: str, where: str, *, max_len: int = 200) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise _err("bad_config", f"{where}.{key} must be a non-empty string of ≤{max_len} chars")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, where: str, *, max_len: int = 2000) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str) or len(value) > max_len:
        raise _err("bad_config", f"{where}.{key} must be a string of ≤{max_len} chars")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str, *, low: int = 0) -> int:
    value = obj.get(key)
    if type(value) is not int or value < low:
        raise _err("bad_config", f"{where}.{key} must be an integer ≥ {low}")
    return value


def _bool(obj: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise _err("bad_config", f"{where}.{key} must be true or false")
    return value


def _list(obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise _err("bad_config", f"{where}.{key} must be a list")
    return value


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _err("bad_config", f"{where} must be an object")
    return value


def _ts(obj: Mapping[str, Any], key: str, where: str) -> datetime:
    return check_ts(obj.get(key), f"{where}.{key}")


def _opt_ts(obj: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = obj.get(key)
    return None if value is None else check_ts(value, f"{where}.{key}")


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _unique(items: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise _err("duplicate", f"{what} {item!r} is listed twice")
        seen.add(item)


@dataclass(frozen=True)
class KeyGrant:
    """A public key granted to a member, an authority's seal or the root, for a period."""

    key: PublicKey
    valid_from: datetime
    valid_until: datetime | None = None

    def __post_init__(self) -> None:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise _err("bad_config", "a key's valid_until must come after its valid_from")

    @property
    def kid(self) -> str:
        return self.key.kid

    def covers(self, at: datetime) -> bool:
        """True when ``at`` falls in [valid_from, valid_until)."""
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)

    @classmethod
    def parse(cls, obj: Any, where: str) -> KeyGrant:
        obj = _obj(obj, where)
        alg = obj.get("alg", ALG_ED25519)
        try:
            key = PublicKey.from_text(_str(obj, "public", where), alg)
        except ProtocolError as exc:
            raise _err(exc.reason, f"{where}: {exc.detail}") from None
        return cls(key, _ts(obj, "valid_from", where), _opt_ts(obj, "valid_until", where))

    def to_dict(self) -> dict[str, Any]:
        return {
            "alg": self.key.alg,
            "public": self.key.to_text(),
            "kid": self.key.kid,
            "valid_from": _iso(self.valid_from),
            "valid_until": _iso(self.valid_until),
        }


def _grants(obj: Mapping[str, Any], key: str, where: str) -> tuple[KeyGrant, ...]:
    grants = tuple(
        KeyGrant.parse(g, f"{where}.{key}[{i}]") for i, g in enumerate(_list(obj, key, where))
    )
    _unique((g.kid for g in grants), f"{where}: key")
    return grants


@dataclass(frozen=True)
class Member:
    """A node or hub of the federation, named by its division code."""

    id: str
    name: str
    parent: str | None
    keys: tuple[KeyGrant, ...]
    roles: frozenset[str]
    endpoint: str | None = None

    def __post_init__(self) -> None:
        check_member_id(self.id)
        if self.parent is not None:
            check_member_id(self.parent, f"{self.id}.parent")
            if self.parent == self.id or not is_within(self.id, self.parent):
                raise _err("bad_parent", f"{self.id}: parent {self.parent} is not above it")
        if not self.roles or not self.roles <= ROLES:
            raise _err("bad_config", f"{self.id}: roles must be among {sorted(ROLES)}")

    @property
    def level(self) -> str:
        return level_of(self.id)

    @property
    def is_hub(self) -> bool:
        return "hub" in self.roles

    @classmethod
    def parse(cls, obj: Any, where: str) -> Member:
        obj = _obj(obj, where)
        parent = obj.get("parent")
        roles = _list(obj, "roles", where)
        if not all(isinstance(r, str) for r in roles):
            raise _err("bad_config", f"{where}.roles must be strings")
        endpoint = obj.get("endpoint")
        if endpoint is not None and not isinstance(endpoint, str):
            raise _err("bad_config", f"{where}.endpoint must be a URL or null")
        return cls(
            id=_str(obj, "id", where, max_len=20),
            name=_str(obj, "name", where),
            parent=parent,
            keys=_grants(obj, "keys", where),
            roles=frozenset(roles),
            endpoint=endpoint,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "level": self.level,
            "parent": self.parent,
            "endpoint": self.endpoint,
            "roles": sorted(self.roles),
            "keys": [k.to_dict() for k in self.keys],
        }


@dataclass(frozen=True)
class Revocation:
    """Withdraws one key (``kid``) or every key of a member (``kid`` None) from ``revoked_at``."""

    member: str
    revoked_at: datetime
    kid: str | None = None
    reason: str = ""

    @classmethod
    def parse(cls, obj: Any, where: str) -> Revocation:
        obj = _obj(obj, where)
        kid = obj.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _err("bad_config", f"{where}.kid must be a key id or null")
        return cls(
            member=check_member_id(obj.get("member"), f"{where}.member"),
            revoked_at=_ts(obj, "revoked_at", where),
            kid=kid,
            reason=_opt_str(obj, "reason", where),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "kid": self.kid,
            "revoked_at": _iso(self.revoked_at),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Authority:
    """A department at a hub that decides matters (``2101:sfj``) and seals results."""

    id: str
    name: str
    seal_keys: tuple[KeyGrant, ...]

    def __post_init__(self) -> None:
        check_address(self.id, "authority")
        if department_of(self.id) is None:
            raise _err("bad_config", f"authority {self.id} must be <member>:<department>")

    @property
    def member(self) -> str:
        return member_of(self.id)

    @property
    def department(self) -> str:
        dept = department_of(self.id)
        assert dept is not None  # checked at construction
        return dept

    @classmethod
    def parse(cls, obj: Any, where: str) -> Authority:
        obj = _obj(obj, where)
        return cls(
            id=_str(obj, "id", where, max_len=40),
            name=_str(obj, "name", where),
            seal_keys=_grants(obj, "seal_keys", where),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "seal_keys": [k.to_dict() for k in self.seal_keys],
        }


@dataclass(frozen=True)
class Material:
    """One item of a matter's 申请材料 checklist."""

    id: str
    name: str
    required: bool = True
    originals: bool = False
    deferrable: bool = False  # 容缺: may be supplied later on a pledge
    pledgeable: bool = False  # 告知承诺: a signed pledge may replace the proof
    licence_type: str = ""  # 只提交一次材料: a reusable licence type, if any

    @classmethod
    def parse(cls, obj: Any, where: str) -> Material:
        obj = _obj(obj, where)
        return cls(
            id=_str(obj, "id", where, max_len=50),
            name=_str(obj, "name", where),
            required=_bool(obj, "required", where, True),
            originals=_bool(obj, "originals", where, False),
            deferrable=_bool(obj, "deferrable", where, False),
            pledgeable=_bool(obj, "pledgeable", where, False),
            licence_type=_opt_str(obj, "licence_type", where, max_len=50),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "required": self.required,
            "originals": self.originals,
            "deferrable": self.deferrable,
            "pledgeable": self.pledgeable,
            "licence_type": self.licence_type,
        }


@dataclass(frozen=True)
class Step:
    """One review step (e.g. 受理审查, 审核, 签发) and the departmental role that performs it."""

    name: str
    role: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role}


@dataclass(frozen=True)
class Matter:
    """A catalog entry (事项); fields after DOMAIN.md "Matter" and GB/T 39046."""

    code: str
    name: str
    type: str
    basis: str
    authority: str  # department, e.g. "sfj"
    level: str  # city | district | township: where the competent authority sits
    kind: str  # 即办件 | 承诺件
    promise_days: int
    legal_days: int
    scope: str  # district | city | metro: where it may be accepted
    materials: tuple[Material, ...] = ()
    steps: tuple[Step, ...] = ()
    delegated_to: tuple[str, ...] = ()  # levels or member ids that may decide on the spot
    result_name: str = ""
    result_type: str = ""
    promise_unit: str = "工作日"
    fee: str = "不收费"
    theme: str = ""
    conditions: str = ""
    place: str = ""

    def __post_init__(self) -> None:
        where = f"matter {self.code!r}"
        if not self.code or len(self.code) > 50:
            raise _err("bad_matter", f"{where}: code is 1 to 50 characters")
        if self.type not in MATTER_TYPES:
            raise _err("bad_matter", f"{where}: type must be 01..20")
        if not DEPT_RE.match(self.authority):
            raise _err("bad_matter", f"{where}: authority must be a department code like 'sfj'")
        if self.level not in DECIDING_LEVELS:
            raise _err("bad_matter", f"{where}: level must be one of {DECIDING_LEVELS}")
        if self.kind not in KINDS:
            raise _err("bad_matter", f"{where}: kind must be 即办件 or 承诺件")
        if self.scope not in SCOPES:
            raise _err("bad_matter", f"{where}: scope must be one of {SCOPES}")
        if self.promise_unit not in UNITS:
            raise _err("bad_matter", f"{where}: promise_unit must be 工作日 or 自然日")
        if self.promise_days < 0 or self.legal_days < self.promise_days:
            raise _err("bad_matter", f"{where}: need 0 ≤ promise_days ≤ legal_days")
        if self.kind == "即办件" and self.promise_days != 0:
            raise _err("bad_matter", f"{where}: a 即办件 has promise_days 0")
        _unique((m.id for m in self.materials), f"{where}: material")
        for target in self.delegated_to:
            if target not in LEVEL_ORDER:
                check_member_id(target, f"{where}.delegated_to")

    @property
    def single_reviewer(self) -> bool:
        """独任审批: one reviewer decides (no chain of steps)."""
        return len(self.steps) <= 1

    def material(self, material_id: str) -> Material | None:
        return self._materials_by_id.get(material_id)

    @cached_property
    def _materials_by_id(self) -> Mapping[str, Material]:
        # Every application names every material: a lookup, not a scan (ids are unique).
        return MappingProxyType({m.id: m for m in self.materials})

    def delegated(self, member_id: str) -> bool:
        """True when ``member_id`` may accept and decide this matter on the spot (即办)."""
        return member_id in self.delegated_to or level_of(member_id) in self.delegated_to

    @classmethod
    def parse(cls, obj: Any, where: str) -> Matter:
        obj = _obj(obj, where)
        steps = []
        for i, s in enumerate(_list(obj, "steps", where)):
            s = _obj(s, f"{where}.steps[{i}]")
            steps.append(
                Step(_str(s, "name", f"{where}.steps[{i}]"), _str(s, "role", f"{where}.steps[{i}]"))
            )
        delegated = _list(obj, "delegated_to", where)
        if not all(isinstance(d, str) for d in delegated):
            raise _err("bad_matter", f"{where}.delegated_to must be strings")
        result = _obj(obj.get("result", {}), f"{where}.result")
        return cls(
            code=_str(obj, "code", where, max_len=50),
            name=_str(obj, "name", where),
            type=_str(obj, "type", where, max_len=2),
            basis=_str(obj, "basis", where, max_len=2000),
            authority=_str(obj, "authority", where, max_len=16),
            level=_str(obj, "level", where, max_len=10),
            kind=_str(obj, "kind", where, max_len=10),
            promise_days=_int(obj, "promise_days", where),
            legal_days=_int(obj, "legal_days", where),
            scope=_str(obj, "scope", where, max_len=10),
            materials=tuple(
                Material.parse(m, f"{where}.materials[{i}]")
                for i, m in enumerate(_list(obj, "materials", where))
            ),
            steps=tuple(steps),
            delegated_to=tuple(delegated),
            result_name=_opt_str(result, "name", f"{where}.result", max_len=200),
            result_type=_opt_str(result, "type", f"{where}.result", max_len=50),
            promise_unit=obj.get("promise_unit", "工作日"),
            fee=_opt_str(obj, "fee", where, max_len=500) or "不收费",
            theme=_opt_str(obj, "theme", where, max_len=100),
            conditions=_opt_str(obj, "conditions", where),
            place=_opt_str(obj, "place", where, max_len=500),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "type": self.type,
            "basis": self.basis,
            "authority": self.authority,
            "level": self.level,
            "kind": self.kind,
            "promise_days": self.promise_days,
            "promise_unit": self.promise_unit,
            "legal_days": self.legal_days,
            "scope": self.scope,
            "materials": [m.to_dict() for m in self.materials],
            "steps": [s.to_dict() for s in self.steps],
            "delegated_to": list(self.delegated_to),
            "result": {"name": self.result_name, "type": self.result_type},
            "fee": self.fee,
            "theme": self.theme,
            "conditions": self.conditions,
            "place": self.place,
        }


@dataclass(frozen=True)
class Bundle:
    """一件事一次办: several matters applied for once (e.g. 企业开办)."""

    code: str
    name: str
    matters: tuple[str, ...]

    @classmethod
    def parse(cls, obj: Any, where: str) -> Bundle:
        obj = _obj(obj, where)
        matters = _list(obj, "matters", where)
        if len(matters) < 2 or not all(isinstance(m, str) for m in matters):
            raise _err("bad_config", f"{where}.matters must list at least two matter codes")
        return cls(_str(obj, "code", where, max_len=50), _str(obj, "name", where), tuple(matters))

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "matters": list(self.matters)}


@dataclass(frozen=True)
class Peer:
    """A metro partner city (都市圈通办): its root keys and the endpoint of its city hub."""

    city: str
    name: str
    endpoint: str
    root_keys: tuple[KeyGrant, ...]

    def __post_init__(self) -> None:
        check_member_id(self.city, "peer city")
        if len(self.city) != 4:
            raise _err("bad_config", f"peer {self.city} must be a 4-digit city code")

    @classmethod
    def parse(cls, obj: Any, where: str) -> Peer:
        obj = _obj(obj, where)
        return cls(
            city=_str(obj, "city", where, max_len=4),
            name=_str(obj, "name", where),
            endpoint=_str(obj, "endpoint", where, max_len=500),
            root_keys=_grants(obj, "root_keys", where),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "city": self.city,
            "name": self.name,
            "endpoint": self.endpoint,
            "root_keys": [k.to_dict() for k in self.root_keys],
        }


@dataclass(frozen=True)
class PasswordReset:
    """An operator's password reset: the argon2 hash of a one-time password, from ``at``.

    The hub where the staff member works replaces their stored password with it at the next
    login attempt if its own password was set before ``at``.
    """

    at: datetime
    hash: str

    @classmethod
    def parse(cls, obj: Any, where: str) -> PasswordReset:
        obj = _obj(obj, where)
        digest = _str(obj, "hash", where, max_len=300)
        if not digest.startswith("$argon2"):
            raise _err("bad_config", f"{where}.hash must be an argon2 hash")
        return cls(_ts(obj, "at", where), digest)

    def to_dict(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "hash": self.hash}


@dataclass(frozen=True)
class Staff:
    """A reviewer or clerk account: where they work, their department and roles.

    ``disabled_at`` makes the account's validity time-aware, like a key's: acts signed
    before it stay valid when a later config disables the account (a refold must not
    undo history); an inactive account without it (older configs) is inactive throughout.
    """

    id: str
    name: str
    member: str
    department: str | None
    roles: tuple[str, ...]
    active: bool = True
    disabled_at: datetime | None = None
    password_reset: PasswordReset | None = None

    def __post_init__(self) -> None:
        if self.active and self.disabled_at is not None:
            raise _err("bad_config", f"staff {self.id}: an active account has no disabled_at")

    def active_at(self, at: datetime) -> bool:
        """Whether the account could act at ``at``."""
        if self.disabled_at is not None:
            return at < self.disabled_at
        return self.active

    @classmethod
    def parse(cls, obj: Any, where: str) -> Staff:
        obj = _obj(obj, where)
        dept = obj.get("department")
        if dept is not None and (not isinstance(dept, str) or not DEPT_RE.match(dept)):
            raise _err("bad_config", f"{where}.department must be a department code or null")
        roles = _list(obj, "roles", where)
        if not all(isinstance(r, str) for r in roles):
            raise _err("bad_config", f"{where}.roles must be strings")
        reset = obj.get("password_reset")
        return cls(
            id=_str(obj, "id", where, max_len=50),
            name=_str(obj, "name", where),
            member=check_member_id(obj.get("member"), f"{where}.member"),
            department=dept,
            roles=tuple(roles),
            active=_bool(obj, "active", where, True),
            disabled_at=_opt_ts(obj, "disabled_at", where),
            password_reset=None
            if reset is None
            else PasswordReset.parse(reset, f"{where}.password_reset"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "member": self.member,
            "department": self.department,
            "roles": list(self.roles),
            "active": self.active,
        }
        if self.disabled_at is not None:
            out["disabled_at"] = _iso(self.disabled_at)
        if self.password_reset is not None:
            out["password_reset"] = self.password_reset.to_dict()
        return out


class Freshness(enum.Enum):
    """How current a config is at a given moment."""

    FRESH = "fresh"
    STALE = "stale"  # past expires, within grace: warn, keep accepting
    EXPIRED = "expired"  # past grace: warn loudly, keep accepting (DESIGN.md §3)


@dataclass(frozen=True)
class FederationConfig:
    """One city's federation config. Build with :meth:`parse`; sign with :func:`sign_config`."""

    federation: str
    name: str
    serial: int
    issued: datetime
    expires: datetime
    root_keys: tuple[KeyGrant, ...]
    members: Mapping[str, Member]
    authorities: Mapping[str, Authority] = field(default_factory=dict)
    catalog: Mapping[str, Matter] = field(default_factory=dict)
    revocations: tuple[Revocation, ...] = ()
    bundles: Mapping[str, Bundle] = field(default_factory=dict)
    peers: Mapping[str, Peer] = field(default_factory=dict)
    calendar: Calendar = field(
        default_factory=lambda: Calendar(frozenset(), frozenset(), frozenset())
    )
    staff: Mapping[str, Staff] = field(default_factory=dict)
    grace_days: int = 30

    def __post_init__(self) -> None:
        city = self.federation
        if len(city) != 4 or not (city.isascii() and city.isdigit()):
            raise _err("bad_config", "federation must be a 4-digit city code")
        if self.serial < 1:
            raise _err("bad_config", "serial starts at 1")
        if self.expires <= self.issued:
            raise _err("bad_config", "expires must come after issued")
        if not self.root_keys:
            raise _err("bad_config", "at least one root key is required")
        if self.grace_days < 0:
            raise _err("bad_config", "grace_days must be ≥ 0")
        if city not in self.members or self.members[city].parent is not None:
            raise _err("bad_config", f"the city hub {city} must be a member with no parent")
        for member in self.members.values():
            if city_of(member.id) != city:
                raise _err("bad_config", f"member {member.id} is outside city {city}")
            if member.parent is None and member.id != city:
                raise _err("bad_parent", f"member {member.id} needs a parent")
            if member.parent is not None:
                parent = self.members.get(member.parent)
                if parent is None or not parent.is_hub:
                    raise _err("bad_parent", f"{member.id}: parent {member.parent} is not a hub")
        for authority in self.authorities.values():
            host = self.members.get(authority.member)
            if host is None or not host.is_hub:
                raise _err("bad_config", f"authority {authority.id} is not at a hub of this city")
        for matter in self.catalog.values():
            if not any(
                a.department == matter.authority and level_of(a.member) == matter.level
                for a in self.authorities.values()
            ):
                raise _err(
                    "bad_matter",
                    f"matter {matter.code}: no {matter.level} authority of {matter.authority}",
                )
        for bundle in self.bundles.values():
            for code in bundle.matters:
                if code not in self.catalog:
                    raise _err("bad_config", f"bundle {bundle.code}: unknown matter {code}")
        for revocation in self.revocations:
            if revocation.member not in self.members:
                raise _err("bad_config", f"revocation of unknown member {revocation.member}")
        if city in self.peers:
            raise _err("bad_config", "a city cannot be its own peer")
        for staff in self.staff.values():
            if staff.member not in self.members:
                raise _err("bad_config", f"staff {staff.id} works at unknown member {staff.member}")

    # -- lookups ------------------------------------------------------------------------

    def children(self, member_id: str) -> list[Member]:
        """Direct children of a member, sorted by id."""
        return sorted(
            (m for m in self.members.values() if m.parent == member_id), key=lambda m: m.id
        )

    def freshness(self, now: datetime) -> Freshness:
        """FRESH before ``expires``; STALE within the grace period after it; EXPIRED beyond."""
        if now < self.expires:
            return Freshness.FRESH
        if now < self.expires + timedelta(days=self.grace_days):
            return Freshness.STALE
        return Freshness.EXPIRED

    def revoked(self, member_id: str, kid: str, at: datetime) -> Revocation | None:
        """The revocation in force for this member's key at ``at``, if any."""
        for revocation in self.revocations:
            if (
                revocation.member == member_id
                and revocation.kid in (None, kid)
                and at >= revocation.revoked_at
            ):
                return revocation
        return None

    def member_key(self, member_id: str, kid: str, at: datetime) -> PublicKey:
        """The key ``kid`` of ``member_id`` if it was valid at ``at``; else a typed error.

        Reasons: ``unknown_author``, ``unknown_key``, ``key_not_valid`` (outside its validity),
        ``key_revoked``.
        """
        member = self.members.get(member_id)
        if member is None:
            raise RemoteProtocolError(
                "unknown_author", f"{member_id} is not a member of {self.federation}"
            )
        return _valid_grant(
            member.keys, kid, at, lambda: self.revoked(member_id, kid, at), member_id
        )

    def seal_key(self, authority_id: str, kid: str, at: datetime) -> PublicKey:
        """The seal key ``kid`` of an authority if valid at ``at`` (reasons as member_key)."""
        authority = self.authorities.get(authority_id)
        if authority is None:
            raise RemoteProtocolError("unknown_authority", f"{authority_id} is not an authority")
        return _valid_grant(
            authority.seal_keys,
            kid,
            at,
            lambda: self.revoked(authority.member, kid, at),
            authority_id,
        )

    def root_key(self, kid: str, at: datetime | None = None) -> PublicKey | None:
        """A root key of this config by id (valid at ``at`` when given)."""
        for grant in self.root_keys:
            if grant.kid == kid and (at is None or grant.covers(at)):
                return grant.key
        return None

    # -- wire form ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The ``config`` object that is signed."""
        return {
            "federation": self.federation,
            "name": self.name,
            "serial": self.serial,
            "issued": _iso(self.issued),
            "expires": _iso(self.expires),
            "grace_days": self.grace_days,
            "root_keys": [k.to_dict() for k in self.root_keys],
            "members": [m.to_dict() for m in sorted(self.members.values(), key=lambda m: m.id)],
            "revocations": [r.to_dict() for r in self.revocations],
            "authorities": [
                a.to_dict() for a in sorted(self.authorities.values(), key=lambda a: a.id)
            ],
            "catalog": [m.to_dict() for m in self.catalog.values()],
            "bundles": [b.to_dict() for b in self.bundles.values()],
            "peers": [p.to_dict() for p in sorted(self.peers.values(), key=lambda p: p.city)],
            "calendar": self.calendar.to_dict(),
            "staff": [s.to_dict() for s in self.staff.values()],
        }

    @classmethod
    def parse(cls, obj: Any) -> FederationConfig:
        """Build from the ``config`` object; errors are LocalProtocolError (see from_signed)."""
        obj = _obj(obj, "config")
        members = [
            Member.parse(m, f"members[{i}]") for i, m in enumerate(_list(obj, "members", "config"))
        ]
        authorities = [
            Authority.parse(a, f"authorities[{i}]")
            for i, a in enumerate(_list(obj, "authorities", "config"))
        ]
        catalog = [
            Matter.parse(m, f"catalog[{i}]") for i, m in enumerate(_list(obj, "catalog", "config"))
        ]
        bundles = [
            Bundle.parse(b, f"bundles[{i}]") for i, b in enumerate(_list(obj, "bundles", "config"))
        ]
        peers = [Peer.parse(p, f"peers[{i}]") for i, p in enumerate(_list(obj, "peers", "config"))]
        staff = [Staff.parse(s, f"staff[{i}]") for i, s in enumerate(_list(obj, "staff", "config"))]
        _unique((m.id for m in members), "member")
        _unique((a.id for a in authorities), "authority")
        _unique((m.code for m in catalog), "matter")
        _unique((b.code for b in bundles), "bundle")
        _unique((p.city for p in peers), "peer")
        _unique((s.id for s in staff), "staff")
        try:
            calendar = Calendar.from_dict(
                obj.get("calendar", {"years": [], "holidays": [], "workdays": []})
            )
        except ProtocolError as exc:
            raise _err(exc.reason, f"calendar: {exc.detail}") from None
        return cls(
            federation=_str(obj, "federation", "config", max_len=4),
            name=_str(obj, "name", "config"),
            serial=_int(obj, "serial", "config", low=1),
            issued=_ts(obj, "issued", "config"),
            expires=_ts(obj, "expires", "config"),
            grace_days=_int(obj, "grace_days", "config") if "grace_days" in obj else 30,
            root_keys=_grants(obj, "root_keys", "config"),
            members={m.id: m for m in members},
            revocations=tuple(
                Revocation.parse(r, f"revocations[{i}]")
                for i, r in enumerate(_list(obj, "revocations", "config"))
            ),
            authorities={a.id: a for a in authorities},
            catalog={m.code: m for m in catalog},
            bundles={b.code: b for b in bundles},
            peers={p.city: p for p in peers},
            calendar=calendar,
            staff={s.id: s for s in staff},
        )


def _valid_grant(
    grants: Sequence[KeyGrant], kid: str, at: datetime, revoked: Any, owner: str
) -> PublicKey:
    grant = next((g for g in grants if g.kid == kid), None)
    if grant is None:
        raise RemoteProtocolError("unknown_key", f"{owner} has no key {kid}")
    if not grant.covers(at):
        raise RemoteProtocolError(
            "key_not_valid", f"key {kid} of {owner} was not valid at {at.isoformat()}"
        )
    revocation = revoked()
    if revocation is not None:
        raise RemoteProtocolError(
            "key_revoked", f"key {kid} of {owner} revoked from {revocation.revoked_at.isoformat()}"
        )
    return grant.key


@dataclass(frozen=True)
class SignedConfig:
    """A config with the root signature over its canonical bytes, as it travels."""

    config: FederationConfig
    sig: Signature
    signed_bytes: bytes = field(repr=False)

    @property
    def serial(self) -> int:
        return self.config.serial

    def to_dict(self) -> dict[str, Any]:
        return {"config": loads_strict(self.signed_bytes), "sig": self.sig.to_dict()}

    def verify(self, trusted_roots: Iterable[PublicKey]) -> None:
        """Raise ``bad_config_signature`` unless one of ``trusted_roots`` signed this config."""
        for key in trusted_roots:
            if key.kid == self.sig.kid and key.verify(self.sig.val, self.signed_bytes):
                return
        raise RemoteProtocolError(
            "bad_config_signature", "config is not signed by a trusted root key"
        )


def sign_config(config: FederationConfig, root: KeyPair) -> SignedConfig:
    """Sign a config with a root key listed in it and valid at its ``issued`` time."""
    if config.root_key(root.kid) is None:
        raise LocalProtocolError("unknown_key", "the signing key is not a root key of this config")
    if config.root_key(root.kid, config.issued) is None:
        raise LocalProtocolError("key_not_valid", "the root key is not valid at the issue time")
    body = config.to_dict()
    check_json_value(body)
    data = canonical(body)
    sig = Signature(kid=root.kid, alg=root.public.alg, val=root.sign(data))
    return SignedConfig(config, sig, data)


def parse_signed(obj: Any) -> SignedConfig:
    """Decode a received signed config (shape only: call :func:`accept_config` to trust it)."""
    try:
        obj = _obj(obj, "signed config")
        if set(obj) != {"config", "sig"}:
            raise _err("bad_config", "a signed config has exactly 'config' and 'sig'")
        sig = _obj(obj["sig"], "sig")
        if set(sig) != {"kid", "alg", "val"} or not isinstance(sig["val"], str):
            raise _err("bad_sig", "sig must have kid, alg and val")
        signature = Signature(sig["kid"], sig["alg"], b64url_decode(sig["val"], reason="bad_sig"))
        config = FederationConfig.parse(obj["config"])
        return SignedConfig(config, signature, canonical(obj["config"]))
    except ProtocolError as exc:
        raise RemoteProtocolError(exc.reason, exc.detail) from None


def accept_config(
    current: SignedConfig | None, offered: SignedConfig, trust_anchor: Iterable[PublicKey] = ()
) -> SignedConfig:
    """Decide whether to adopt ``offered``; returns the config to keep.

    The offered config must be signed by a root key of ``current`` that was valid when the
    offered config was issued (or, for the first config, one of ``trust_anchor``), be of the
    same federation, not be issued before ``current``, and have a serial at least
    ``current``'s. The same serial with other content is ``serial_conflict`` (a root key
    signed two configs: evidence of compromise or operator error). A lower serial is
    ``stale_serial``.
    """
    if current is None:
        offered.verify(trust_anchor)
        return offered
    # Only a root key valid when the offered config was issued may sign it, and issue times
    # never go back: a retired (perhaps leaked) root key cannot sign a new config.
    issued = offered.config.issued
    offered.verify(g.key for g in current.config.root_keys if g.covers(issued))
    if issued < current.config.issued:
        raise RemoteProtocolError("stale_serial", "offered config was issued before the held one")
    if offered.config.federation != current.config.federation:
        raise RemoteProtocolError("wrong_federation", f"config of {offered.config.federation}")
    if offered.serial < current.serial:
        raise RemoteProtocolError(
            "stale_serial", f"offered serial {offered.serial} < held serial {current.serial}"
        )
    if offered.serial == current.serial:
        if offered.signed_bytes != current.signed_bytes:
            raise RemoteProtocolError(
                "serial_conflict", f"two different configs with serial {offered.serial}"
            )
        return current
    return offered


@dataclass(frozen=True)
class Federation:
    """A member's view: its own city's config plus the verified configs of metro peers."""

    home: FederationConfig
    peers: Mapping[str, FederationConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for city, peer in self.peers.items():
            if city not in self.home.peers or peer.federation != city:
                raise _err("bad_config", f"{city} is not a metro peer of {self.home.federation}")

    def city(self, address: str) -> FederationConfig | None:
        """The config that governs an address (own city or a peer), or None."""
        code = city_of(address)
        return self.home if code == self.home.federation else self.peers.get(code)

    def configs(self) -> Iterator[FederationConfig]:
        yield self.home
        yield from self.peers.values()

    def member(self, member_id: str) -> Member | None:
        config = self.city(member_id)
        return None if config is None else config.members.get(member_id)

    def authority(self, authority_id: str) -> Authority | None:
        config = self.city(authority_id)
        return None if config is None else config.authorities.get(authority_id)

    def matter(self, code: str) -> tuple[FederationConfig, Matter] | None:
        """The catalog entry for a matter code and the city config it belongs to.

        Own catalog first; a peer city's matter is visible only with scope ``metro``.
        """
        if code in self.home.catalog:
            return self.home, self.home.catalog[code]
        for config in self.peers.values():
            matter = config.catalog.get(code)
            if matter is not None and matter.scope == "metro":
                return config, matter
        return None

    def member_key(self, member_id: str, kid: str, at: datetime) -> PublicKey:
        """As :meth:`FederationConfig.member_key`, across the metro area."""
        config = self.city(member_id)
        if config is None:
            raise RemoteProtocolError("unknown_author", f"{member_id} is in no known federation")
        return config.member_key(member_id, kid, at)

    def seal_key(self, authority_id: str, kid: str, at: datetime) -> PublicKey:
        """As :meth:`FederationConfig.seal_key`, across the metro area."""
        config = self.city(authority_id)
        if config is None:
            raise RemoteProtocolError(
                "unknown_authority", f"{authority_id} is in no known federation"
            )
        return config.seal_key(authority_id, kid, at)


def divisions_between(member_id: str) -> list[str]:
    """Division codes from the city down to ``member_id`` (inclusive)."""
    div = division(member_id)
    return [div[:n] for n in (4, 6, 9, 12) if n <= len(div)]
