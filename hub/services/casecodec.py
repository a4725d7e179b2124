"""Encode a folded :class:`protocol.case.Case` as JSON for the fold cache, and back.

A case is folded incrementally: the stored fold plus the next event gives the next fold. The
fold is never recomputed from all events under the current config, because a later config
(a reviewer who left, a changed catalog entry) must not undo what was valid when it happened.

The codec walks the dataclass type hints, so fields added to ``Case`` later are covered as
long as they are built from dataclasses, tuples, optionals, enums, dates and JSON scalars.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Any, Union

from protocol.case import Case


class CodecError(Exception):
    """A stored fold does not match the current ``Case`` shape (re-fold from events)."""


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@cache
def _init_fields(cls: type) -> tuple[str, ...] | None:
    """Names of a dataclass's init fields; None for any other type."""
    if not dataclasses.is_dataclass(cls):
        return None
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


_PLAIN = frozenset({str, int, bool, type(None)})


def _encode(value: Any) -> Any:
    # Exact types first: a fold is mostly dataclasses and plain scalars (a case encodes on
    # every event it takes, so this runs in the hub's ingest path).
    kind: type = type(value)
    if kind in _PLAIN:
        return value
    names = _init_fields(kind)
    if names is not None:
        return {name: _encode(getattr(value, name)) for name in names}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (tuple, list, frozenset, set)):
        items = [_encode(v) for v in value]
        return sorted(items) if isinstance(value, (frozenset, set)) else items
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise CodecError(f"cannot encode {type(value).__name__}")


def _decode(tp: Any, raw: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, raw)
            except (CodecError, ValueError, TypeError, KeyError):
                continue
        raise CodecError(f"no member of {tp} fits {raw!r:.40}")
    if origin is typing.Literal:
        if raw not in args:
            raise CodecError(f"{raw!r:.40} is not one of {args}")
        return raw
    if origin is tuple:
        if not isinstance(raw, list):
            raise CodecError("expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in raw)
        return tuple(_decode(a, v) for a, v in zip(args, raw, strict=True))
    if origin in (frozenset, set):
        return frozenset(_decode(args[0], v) for v in raw)
    if origin in (dict, typing.Mapping) or tp is dict:
        return {k: _decode(args[1], v) for k, v in raw.items()} if args else dict(raw)
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            if not isinstance(raw, dict):
                raise CodecError(f"expected an object for {tp.__name__}")
            hints = _hints(tp)
            kwargs = {
                f.name: _decode(hints[f.name], raw[f.name])
                for f in dataclasses.fields(tp)
                if f.init and f.name in raw
            }
            missing = [
                f.name
                for f in dataclasses.fields(tp)
                if f.init
                and f.name not in raw
                and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING
            ]
            if missing:
                raise CodecError(f"{tp.__name__} lacks {missing}")
            return tp(**kwargs)
        if issubclass(tp, Enum):
            return tp(raw)
        if tp is datetime:
            return datetime.fromisoformat(raw)
        if tp is date:
            return date.fromisoformat(raw)
        if tp is bool:
            if not isinstance(raw, bool):
                raise CodecError("expected a boolean")
            return raw
        if tp in (str, int):
            if not isinstance(raw, tp) or isinstance(raw, bool):
                raise CodecError(f"expected {tp.__name__}")
            return raw
    if tp is Any:
        return raw
    raise CodecError(f"cannot decode {tp}")


def encode_case(case: Case) -> str:
    """JSON text of a folded case."""
    return json.dumps(_encode(case), ensure_ascii=False, separators=(",", ":"))


def decode_case(text: str) -> Case:
    """Inverse of :func:`encode_case`; :class:`CodecError` when the shape changed."""
    try:
        value = _decode(Case, json.loads(text))
    except (ValueError, TypeError, KeyError) as exc:
        raise CodecError(str(exc)) from None
    assert isinstance(value, Case)
    return value
