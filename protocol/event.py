"""Signed events (DESIGN.md §2): the unit of everything that happens.

Wire form (one JSON object, exactly these top-level fields)::

    {"v":1,"author":"210102001001","seq":42,"prev":"<hex id of seq 41, or null for seq 1>",
     "ts":"2026-11-23T09:30:00+08:00","type":"case.submitted","case":"210102001001-20261123-0007",
     "to":["2101:sfj"],"body":{...},"sig":{"kid":"<key id>","alg":"ed25519","val":"<base64url>"}}

* signing bytes: RFC 8785 (JCS) of the object without ``sig``;
* ``sig.val``: Ed25519 over the signing bytes, base64url without padding;
* event id: lowercase hex SHA-256 of the JCS bytes of the whole signed object.

An :class:`Event` cannot exist in an invalid shape: the constructor checks every field. A valid
shape is not a valid signature; :meth:`Event.verify` checks that against a key from the config.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .encoding import b64url_decode, b64url_encode, canonical, check_json_value, loads_strict
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .ids import check_address, check_case_number, check_member_id
from .keys import ALGORITHMS, KeyPair, PublicKey

VERSION = 1
MAX_BODY_BYTES = 64 * 1024
# The header fields are bounded, so a bounded body bounds the whole event.
MAX_EVENT_BYTES = MAX_BODY_BYTES + 4 * 1024
MAX_RECIPIENTS = 16
FIELDS = frozenset({"v", "author", "seq", "prev", "ts", "type", "case", "to", "body", "sig"})
SIG_FIELDS = frozenset({"kid", "alg", "val"})
TYPE_RE = re.compile(r"^[a-z][a-z_]{0,31}(?:\.[a-z][a-z_]{0,31}){1,3}\Z")
TS_RE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})\Z"
)
ID_RE = re.compile(r"^[0-9a-f]{64}\Z")
KID_RE = re.compile(r"^[0-9a-f]{32}\Z")


def _fail(reason: str, detail: str) -> LocalProtocolError:
    return LocalProtocolError(reason, detail)


def check_ts(value: object, where: str = "ts") -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset."""
    if not isinstance(value, str) or not TS_RE.match(value):
        raise _fail("bad_ts", f"{where}: expected RFC 3339 with offset, got {str(value)[:40]!r}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail("bad_ts", f"{where}: {exc}") from None


@dataclass(frozen=True)
class Signature:
    """The ``sig`` object: key id, algorithm, signature bytes."""

    kid: str
    alg: str
    val: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not KID_RE.match(self.kid):
            raise _fail("bad_sig", "sig.kid must be 32 lowercase hex digits")
        if not isinstance(self.alg, str) or self.alg not in ALGORITHMS:
            raise _fail("unknown_alg", f"sig.alg {str(self.alg)[:20]!r} is not supported")
        if not isinstance(self.val, bytes) or len(self.val) != 64:
            raise _fail("bad_sig", "sig.val must be a 64-byte Ed25519 signature")

    def to_dict(self) -> dict[str, str]:
        return {"kid": self.kid, "alg": self.alg, "val": b64url_encode(self.val)}


@dataclass(frozen=True)
class Event:
    """One signed event. Treat ``body`` as read-only: the id is computed at construction."""

    author: str
    seq: int
    prev: str | None
    ts: str
    type: str
    case: str | None
    to: tuple[str, ...]
    body: dict[str, Any]
    sig: Signature
    v: int = VERSION
    id: str = field(init=False, compare=False)
    signing_bytes: bytes = field(init=False, repr=False, compare=False)
    wire_bytes: bytes = field(init=False, repr=False, compare=False)
    _at: datetime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.v != VERSION or type(self.v) is not int:
            raise _fail("bad_version", f"v must be {VERSION}")
        check_member_id(self.author, "author")
        if type(self.seq) is not int or self.seq < 1 or self.seq > 2**53 - 1:
            raise _fail("bad_seq", "seq must be a positive integer")
        if self.seq == 1:
            if self.prev is not None:
                raise _fail("bad_prev", "the first event of a chain has prev null")
        elif not isinstance(self.prev, str) or not ID_RE.match(self.prev):
            raise _fail("bad_prev", "prev must be the hex id of the author's previous event")
        object.__setattr__(self, "_at", check_ts(self.ts))
        if not isinstance(self.type, str) or not TYPE_RE.match(self.type):
            raise _fail("bad_type", f"type {str(self.type)[:40]!r} is not a dotted event type")
        if self.case is not None:
            check_case_number(self.case)
        if not isinstance(self.to, tuple) or len(self.to) > MAX_RECIPIENTS:
            raise _fail("bad_to", f"to must be a list of at most {MAX_RECIPIENTS} addresses")
        for address in self.to:
            check_address(address, "to")
        if len(set(self.to)) != len(self.to):
            raise _fail("bad_to", "to lists an address twice")
        if not isinstance(self.body, dict):
            raise _fail("bad_body", "body must be an object")
        if not isinstance(self.sig, Signature):
            raise _fail("bad_sig", "sig must be a Signature")
        body = canonical(self.body)
        if len(body) > MAX_BODY_BYTES:
            raise _fail("body_too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
        signing, whole = self._jcs(body)
        object.__setattr__(self, "signing_bytes", signing)
        object.__setattr__(self, "wire_bytes", whole)
        object.__setattr__(self, "id", hashlib.sha256(whole).hexdigest())

    def _jcs(self, body: bytes) -> tuple[bytes, bytes]:
        """JCS bytes of the signed object and of the whole event, around the body's bytes.

        Every header field was checked above: ASCII ids, digits and a fixed alphabet, none
        of which JSON escapes, so the canonical form is written directly, keys in JCS order
        (author, body, case, prev, seq, sig, to, ts, type, v; sig: alg, kid, val).
        """
        case = "null" if self.case is None else f'"{self.case}"'
        prev = "null" if self.prev is None else f'"{self.prev}"'
        to = ",".join(f'"{address}"' for address in self.to)
        head = f'{{"author":"{self.author}","body":'.encode()
        middle = f',"case":{case},"prev":{prev},"seq":{self.seq},'
        tail = f'"to":[{to}],"ts":"{self.ts}","type":"{self.type}","v":{self.v}}}'
        sig = self.sig
        signed = f'"sig":{{"alg":"{sig.alg}","kid":"{sig.kid}","val":"{b64url_encode(sig.val)}"}},'
        return head + body + (middle + tail).encode(), head + body + (
            middle + signed + tail
        ).encode()

    def unsigned_dict(self) -> dict[str, Any]:
        """The object that is signed: every field but ``sig``."""
        return {
            "v": self.v,
            "author": self.author,
            "seq": self.seq,
            "prev": self.prev,
            "ts": self.ts,
            "type": self.type,
            "case": self.case,
            "to": list(self.to),
            "body": self.body,
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole signed object, as sent on the wire."""
        out = self.unsigned_dict()
        out["sig"] = self.sig.to_dict()
        return out

    @property
    def at(self) -> datetime:
        """``ts`` as an aware datetime (the author's claim, not the receiver's clock)."""
        return self._at

    def verify(self, key: PublicKey) -> None:
        """Raise ``bad_signature`` unless ``key`` signed this event."""
        if key.kid != self.sig.kid or key.alg != self.sig.alg:
            raise RemoteProtocolError("wrong_key", f"signed by key {self.sig.kid}, not {key.kid}")
        if not key.verify(self.sig.val, self.signing_bytes):
            raise RemoteProtocolError("bad_signature", f"signature of {self.id} does not verify")

    @classmethod
    def create(
        cls,
        key: KeyPair,
        *,
        author: str,
        seq: int,
        prev: str | None,
        ts: str,
        type: str,
        case: str | None,
        to: list[str] | tuple[str, ...],
        body: dict[str, Any],
    ) -> Event:
        """Build and sign an event with ``key``."""
        check_json_value(body, where="body")
        draft = {
            "v": VERSION,
            "author": author,
            "seq": seq,
            "prev": prev,
            "ts": ts,
            "type": type,
            "case": case,
            "to": list(to),
            "body": body,
        }
        # Validate the header before signing so a bad field is named, not a bad signature.
        check_json_value(draft)
        val = key.sign(canonical(draft))
        return cls(
            author=author,
            seq=seq,
            prev=prev,
            ts=ts,
            type=type,
            case=case,
            to=tuple(to),
            body=body,
            sig=Signature(kid=key.kid, alg=key.public.alg, val=val),
        )

    @classmethod
    def from_dict(cls, obj: Any) -> Event:
        """Decode a received object; any problem is a :class:`RemoteProtocolError`."""
        try:
            return cls._from_dict(obj)
        except ProtocolError as exc:
            raise RemoteProtocolError(exc.reason, exc.detail) from None

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        """Decode received JSON bytes strictly (see :func:`protocol.encoding.loads_strict`)."""
        # Received JSON may carry insignificant white space; refuse only what cannot fit.
        if len(data) > MAX_EVENT_BYTES * 2:
            raise RemoteProtocolError("event_too_large", f"event exceeds {MAX_EVENT_BYTES} bytes")
        return cls.from_dict(loads_strict(data))

    @classmethod
    def _from_dict(cls, obj: Any) -> Event:
        if not isinstance(obj, dict):
            raise _fail("bad_event", "an event is a JSON object")
        keys = set(obj)
        if keys != FIELDS:
            missing, extra = sorted(FIELDS - keys), sorted(keys - FIELDS)
            raise _fail("bad_fields", f"missing {missing}, unexpected {[k[:20] for k in extra]}")
        sig = obj["sig"]
        if not isinstance(sig, dict) or set(sig) != SIG_FIELDS:
            raise _fail("bad_sig", "sig must have exactly kid, alg and val")
        if not isinstance(sig["val"], str):
            raise _fail("bad_sig", "sig.val must be base64url text")
        to = obj["to"]
        if not isinstance(to, list):
            raise _fail("bad_to", "to must be a list")
        return cls(
            v=obj["v"],
            author=obj["author"],
            seq=obj["seq"],
            prev=obj["prev"],
            ts=obj["ts"],
            type=obj["type"],
            case=obj["case"],
            to=tuple(to),
            body=obj["body"],
            sig=Signature(
                kid=sig["kid"], alg=sig["alg"], val=b64url_decode(sig["val"], reason="bad_sig")
            ),
        )
