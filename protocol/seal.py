"""Sealed results (电子签章): a result document signed with the authority's seal key.

Anyone can verify a result offline against the federation config: is it genuine, which
authority sealed it, and was that seal key valid (not expired, not revoked) when it was
issued. Document::

    {"type": "tongban.result", "v": 1, "case": "210102001001-20261123-0007",
     "matter": "SY-SFJ-0003", "matter_name": "律师执业年度考核结果备案",
     "applicant": {"name": "张三", "id_masked": "2101**********1234"},
     "result_code": 0, "decision": "准予", "licence_no": "…",
     "valid_from": "2026-11-24", "valid_until": "2027-11-22",
     "authority": "2101:sfj", "authority_name": "沈阳市司法局",
     "issued": "2026-11-24T10:00:00+08:00",
     "seal": {"kid": "…", "alg": "ed25519", "val": "…"}}

``licence_no`` (证照编号), ``valid_from`` and ``valid_until`` (有效期) and ``result_name`` are
optional; the applicant appears only masked. The seal signs the RFC 8785 bytes of the
document without ``seal``. As printed text (QR) a
result is ``TBRES1.`` + base64url of its canonical JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Federation
from .encoding import b64url_decode, b64url_encode, canonical, check_json_value, loads_strict
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .event import Signature, check_ts
from .ids import check_address, check_case_number
from .keys import KeyPair

KIND = "tongban.result"
PREFIX = "TBRES1."
REQUIRED = ("case", "matter", "matter_name", "applicant", "result_code", "authority", "issued")


def _check_document(doc: Mapping[str, Any]) -> None:
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise LocalProtocolError("bad_result", f"missing {missing}")
    if doc.get("type") != KIND or type(doc.get("v")) is not int or doc.get("v") != 1:
        raise LocalProtocolError("bad_result", f"not a {KIND} v1 document")
    check_case_number(doc["case"])
    check_address(doc["authority"], "authority")
    check_ts(doc["issued"], "issued")
    check_json_value(dict(doc))


def seal_result(doc: Mapping[str, Any], key: KeyPair) -> dict[str, Any]:
    """Return ``doc`` with ``type``/``v`` set and a ``seal`` by ``key``."""
    body = {k: v for k, v in doc.items() if k != "seal"}
    body.update(type=KIND, v=1)
    _check_document(body)
    seal = Signature(key.kid, key.public.alg, key.sign(canonical(body)))
    return {**body, "seal": seal.to_dict()}


@dataclass(frozen=True)
class SealCheck:
    """The verdict on a result document, for people: genuine or not, and why."""

    genuine: bool
    reason: str
    detail: str
    authority: str | None = None
    authority_name: str | None = None
    kid: str | None = None


def verify_result(doc: Any, federation: Federation) -> SealCheck:
    """Check a result document against the federation (never raises for a bad document)."""
    try:
        if not isinstance(doc, dict):
            raise RemoteProtocolError("bad_result", "a result is a JSON object")
        seal = doc.get("seal")
        if (
            not isinstance(seal, dict)
            or set(seal) != {"kid", "alg", "val"}
            or not isinstance(seal["val"], str)
        ):
            raise RemoteProtocolError("unsealed", "the document carries no seal")
        body = {k: v for k, v in doc.items() if k != "seal"}
        _check_document(body)
        signature = Signature(
            seal["kid"], seal["alg"], b64url_decode(seal["val"], reason="bad_sig")
        )
        authority = federation.authority(body["authority"])
        name = authority.name if authority else None
        key = federation.seal_key(body["authority"], signature.kid, check_ts(body["issued"]))
        if not key.verify(signature.val, canonical(body)):
            raise RemoteProtocolError("bad_seal", "the seal does not match the document")
    except ProtocolError as exc:
        authority_id = doc.get("authority") if isinstance(doc, dict) else None
        return SealCheck(
            False,
            exc.reason,
            exc.detail,
            authority=authority_id if isinstance(authority_id, str) else None,
        )
    return SealCheck(
        True, "genuine", f"sealed by {name or body['authority']}", body["authority"], name, key.kid
    )


def result_text(doc: Mapping[str, Any]) -> str:
    """The printable/QR form of a sealed result."""
    return PREFIX + b64url_encode(canonical(dict(doc)))


def parse_result_text(text: str) -> Any:
    """Inverse of :func:`result_text`; also accepts plain JSON. Raises RemoteProtocolError."""
    text = text.strip()
    if text.startswith(PREFIX):
        return loads_strict(b64url_decode(text[len(PREFIX) :], reason="bad_result"))
    return loads_strict(text)
