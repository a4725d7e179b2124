"""Enrolment requests: how a new member asks to join the federation.

A new station or hub generates its key locally and prints an enrolment request; the city
operator checks it and approves it into the next config (DESIGN.md §3). The request is signed
by the new key itself (proof of possession), so a typo in the public key cannot slip through::

    {"type": "tongban.enrolment", "v": 1, "id": "210102001001", "name": "…村便民服务站",
     "role": "station", "parent": "210102", "endpoint": null,
     "public": "<base64url>", "seal_keys": {},
     "created": "2026-11-23T09:30:00+08:00",
     "sig": {"kid": "…", "alg": "ed25519", "val": "…"}}

``seal_keys`` (hubs only) are the public seal keys of the departments the hub hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .encoding import b64url_decode, b64url_encode, canonical, loads_strict
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .event import Signature, check_ts
from .ids import DEPT_RE, check_member_id, is_within
from .keys import KeyPair, PublicKey

KIND = "tongban.enrolment"
FIELDS = frozenset(
    {
        "type",
        "v",
        "id",
        "name",
        "role",
        "parent",
        "endpoint",
        "public",
        "seal_keys",
        "created",
        "sig",
    }
)
ROLES = ("station", "hub")


@dataclass(frozen=True)
class Enrolment:
    """A verified enrolment request."""

    id: str
    name: str
    role: str
    parent: str | None
    endpoint: str | None
    public: PublicKey
    created: str
    seal_keys: Mapping[str, PublicKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_member_id(self.id)
        if self.role not in ROLES:
            raise LocalProtocolError("bad_enrolment", f"role must be one of {ROLES}")
        if not isinstance(self.name, str) or not 0 < len(self.name) <= 200:
            raise LocalProtocolError("bad_enrolment", "name must be 1 to 200 characters")
        if self.parent is not None:
            check_member_id(self.parent, "parent")
            if self.parent == self.id or not is_within(self.id, self.parent):
                raise LocalProtocolError("bad_enrolment", f"{self.parent} is not above {self.id}")
        if self.endpoint is not None and not (
            isinstance(self.endpoint, str) and self.endpoint.startswith(("http://", "https://"))
        ):
            raise LocalProtocolError("bad_enrolment", "endpoint must be an http(s) URL or null")
        if self.role == "station" and (self.seal_keys or self.endpoint is not None):
            raise LocalProtocolError("bad_enrolment", "a station has no endpoint and no seal keys")
        for dept in self.seal_keys:
            if not DEPT_RE.match(dept):
                raise LocalProtocolError("bad_enrolment", f"{dept!r} is not a department code")
        check_ts(self.created, "created")

    def unsigned_dict(self) -> dict[str, Any]:
        return {
            "type": KIND,
            "v": 1,
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "parent": self.parent,
            "endpoint": self.endpoint,
            "public": self.public.to_text(),
            "seal_keys": {d: k.to_text() for d, k in sorted(self.seal_keys.items())},
            "created": self.created,
        }


def make_enrolment(key: KeyPair, enrolment: Enrolment) -> dict[str, Any]:
    """The signed request for ``enrolment`` (whose ``public`` must be ``key``'s)."""
    if enrolment.public != key.public:
        raise LocalProtocolError("bad_enrolment", "the request must carry the signing key")
    body = enrolment.unsigned_dict()
    body["sig"] = Signature(key.kid, key.public.alg, key.sign(canonical(body))).to_dict()
    return body


def read_enrolment(data: bytes | str | Mapping[str, Any]) -> Enrolment:
    """Parse and verify a signed enrolment request (RemoteProtocolError when it is not one)."""
    try:
        obj = loads_strict(data) if isinstance(data, (bytes, str)) else dict(data)
        if not isinstance(obj, dict) or set(obj) != FIELDS:
            raise LocalProtocolError("bad_enrolment", f"an enrolment has exactly {sorted(FIELDS)}")
        if obj["type"] != KIND or type(obj["v"]) is not int or obj["v"] != 1:
            raise LocalProtocolError("bad_enrolment", f"not a {KIND} v1")
        seals = obj["seal_keys"]
        sig = obj["sig"]
        if (
            not isinstance(seals, dict)
            or not isinstance(sig, dict)
            or set(sig) != {"kid", "alg", "val"}
        ):
            raise LocalProtocolError("bad_enrolment", "seal_keys and sig must be objects")
        if not isinstance(obj["public"], str) or not isinstance(sig["val"], str):
            raise LocalProtocolError("bad_enrolment", "public and sig.val must be base64url text")
        enrolment = Enrolment(
            id=obj["id"],
            name=obj["name"],
            role=obj["role"],
            parent=obj["parent"],
            endpoint=obj["endpoint"],
            public=PublicKey.from_text(obj["public"]),
            created=obj["created"],
            seal_keys={d: PublicKey.from_text(str(k)) for d, k in seals.items()},
        )
        signature = Signature(sig["kid"], sig["alg"], b64url_decode(sig["val"], reason="bad_sig"))
        signed = canonical({k: v for k, v in obj.items() if k != "sig"})
    except ProtocolError as exc:
        raise RemoteProtocolError(exc.reason, exc.detail) from None
    if signature.kid != enrolment.public.kid or not enrolment.public.verify(signature.val, signed):
        raise RemoteProtocolError(
            "bad_signature", "the request is not signed by the key it carries"
        )
    return enrolment


def enrolment_text(request: Mapping[str, Any]) -> str:
    """One line of text to print or paste (base64url of the canonical JSON)."""
    return "TBENROL1." + b64url_encode(canonical(dict(request)))


def parse_enrolment_text(text: str) -> Enrolment:
    """Inverse of :func:`enrolment_text`, also accepting the plain JSON form."""
    text = text.strip()
    if text.startswith("TBENROL1."):
        return read_enrolment(b64url_decode(text[len("TBENROL1.") :], reason="bad_enrolment"))
    return read_enrolment(text)
