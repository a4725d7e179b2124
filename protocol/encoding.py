"""Byte encodings shared by the wire format: base64url, RFC 8785 canonical JSON, strict JSON.

Strict JSON is I-JSON (RFC 7493) minus floats: integers must lie within +-(2**53 - 1) so every
implementation reads the same number, and there are no fractions or exponents, so the canonical
form of a number is its plain decimal digits. Money is counted in fen (integers).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import orjson
import rfc8785

from .errors import LocalProtocolError, RemoteProtocolError

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 32


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, reason: str = "bad_base64") -> bytes:
    """Inverse of :func:`b64url_encode`; rejects padding, other alphabets, non-canonical tails."""
    if not isinstance(text, str) or "=" in text or not text.isascii():
        raise RemoteProtocolError(reason, "expected unpadded base64url text")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise RemoteProtocolError(reason, str(exc)) from None
    if b64url_encode(raw) != text:
        raise RemoteProtocolError(reason, "non-canonical base64url")
    return raw


def _plainly_strict(value: Any, depth: int = 0) -> bool:
    """True when ``value`` is strict JSON made of exactly the builtin types; False when the
    full check must decide (it names the problem and its place, or accepts a subclass)."""
    kind = type(value)
    if kind is str:
        if value.isascii():
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if kind is int:
        return bool(-MAX_SAFE_INT <= value <= MAX_SAFE_INT)
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _plainly_strict(item, depth + 1):
                return False
        return True
    if kind is list:
        return all(_plainly_strict(item, depth + 1) for item in value)
    return value is None or kind is bool


def check_json_value(value: Any, *, where: str = "value", depth: int = 0) -> None:
    """Raise LocalProtocolError unless ``value`` is strict JSON (see module docstring)."""
    if depth == 0 and _plainly_strict(value):
        return  # the common case, without building a path for every nested value
    if depth > MAX_DEPTH:
        raise LocalProtocolError("too_deep", f"{where} nests deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (e.g. "\\ud800" in JSON) has no UTF-8 form and no JCS form.
            raise LocalProtocolError("bad_utf8", f"{where}: lone surrogate in a string") from None
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise LocalProtocolError("bad_number", f"{where}: integer outside +-(2**53-1)")
        return
    if isinstance(value, float):
        raise LocalProtocolError("bad_number", f"{where}: fractions are not allowed, use integers")
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_json_value(item, where=f"{where}[{i}]", depth=depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise LocalProtocolError("bad_type", f"{where}: object keys must be strings")
            check_json_value(item, where=f"{where}.{key}", depth=depth + 1)
        return
    raise LocalProtocolError("bad_type", f"{where}: {type(value).__name__} is not JSON")


# For strict JSON (no floats, integers within +-(2**53 - 1), no lone surrogates) orjson with
# sorted keys writes exactly the JCS bytes: the same string escapes (short forms for \b \f
# \n \r \t, \u00xx for other controls, nothing else escaped), plain decimal integers, no
# white space. It is an order of magnitude faster than the json module, and every event is
# canonicalised where it is made and wherever it is received. The one difference is key
# order: JCS sorts keys by UTF-16 code units, orjson by code points, which disagree only when
# a key holds a character beyond the BMP (4 bytes in UTF-8, lead byte F0-F4). Any such byte
# in the output sends the value to the reference implementation (tests compare the two).
_BEYOND_BMP = re.compile(b"[\xf0-\xf4]")


def canonical(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of a strict-JSON value."""
    check_json_value(value)
    data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    if _BEYOND_BMP.search(data):
        return bytes(rfc8785.dumps(value))
    return data


def _reject_float(text: str) -> Any:
    raise RemoteProtocolError("bad_number", f"non-canonical number {text[:20]!r}: use integers")


def _reject_constant(text: str) -> Any:
    raise RemoteProtocolError("bad_number", f"{text} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in pairs:
        if key in out:
            raise RemoteProtocolError("duplicate_key", f"key {key[:40]!r} appears twice")
        out[key] = item
    return out


def loads_strict(data: bytes | str) -> Any:
    """Parse JSON received from a peer, strictly: UTF-8, no floats, no duplicate keys."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError("bad_utf8", str(exc)) from None
    try:
        value = json.loads(
            data,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
        )
    except RecursionError:
        raise RemoteProtocolError("too_deep", "JSON nests too deep") from None
    except json.JSONDecodeError as exc:
        raise RemoteProtocolError("bad_json", str(exc)) from None
    try:
        check_json_value(value)
    except LocalProtocolError as exc:
        raise RemoteProtocolError(exc.reason, exc.detail) from None
    return value
