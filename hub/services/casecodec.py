"""Encode a folded :class:`protocol.case.Case` as JSON for the fold cache, and back.

A case is folded incrementally: the stored fold plus the next event gives the next fold. The
fold is never recomputed from all events under the current config, because a later config
(a reviewer who left, a changed catalog entry) must not undo what was valid when it happened.

The codec walks the dataclass type hints, so fields added to ``Case`` later are covered as
long as they are built from dataclasses, tuples, optionals, enums, dates and JSON scalars.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union

import orjson

from protocol.case import Case
from protocol.config import Matter


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

# A case carries its catalog entry (``Case.terms``), the same few immutable Matter objects
# for thousands of cases and most of a fold's bytes: each is encoded once (by identity; the
# cache keeps the object, so an id is never reused while cached) and decoded once per text.
_SHARED: tuple[type, ...] = (Matter,)
_CACHE_LIMIT = 1024
_encoded_shared: dict[int, tuple[Any, Any]] = {}
_decoded_shared: dict[tuple[type, bytes], Any] = {}
_terms_text: dict[int, tuple[Any, str]] = {}

K = TypeVar("K")
V = TypeVar("V")


def _remember(cache: dict[K, V], key: K, value: V) -> V:
    """Put ``value`` in ``cache`` (emptied first when full: a hub's catalog has far fewer
    entries than the limit, so this only bounds a pathological run)."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def _by_identity(cache: dict[int, tuple[Any, V]], value: Any, make: Callable[[], V]) -> V:
    """What ``make`` gives for ``value``, cached by identity (the cache keeps ``value``, so
    its id is not reused while cached)."""
    hit = cache.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    return _remember(cache, id(value), (value, make()))[1]


def _encode_shared(value: Any) -> Any:
    kind: type = type(value)
    names = _init_fields(kind)
    assert names is not None
    return _by_identity(
        _encoded_shared, value, lambda: {n: _encode(getattr(value, n)) for n in names}
    )


def _decode_shared(tp: type, raw: Any) -> Any:
    key = (tp, orjson.dumps(raw, option=orjson.OPT_SORT_KEYS))
    hit = _decoded_shared.get(key)
    return _remember(_decoded_shared, key, _decode_fields(tp, raw)) if hit is None else hit


def _encode(value: Any) -> Any:
    # Exact types first: a fold is mostly dataclasses and plain scalars (a case encodes on
    # every event it takes, so this runs in the hub's ingest path).
    kind: type = type(value)
    if kind in _PLAIN:
        return value
    if kind in _SHARED:
        return _encode_shared(value)
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


def _decode_fields(tp: type, raw: dict[str, Any]) -> Any:
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
            if tp in _SHARED:
                return _decode_shared(tp, raw)
            return _decode_fields(tp, raw)
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


# -- the compiled encoder ------------------------------------------------------------------
#
# A hub encodes a case on every event it folds. Walking the value with :func:`_encode` costs
# a call and a type test per field; instead each dataclass gets a function compiled from its
# type hints (as ``dataclasses`` compiles ``__init__``) that builds the same JSON value
# directly. Anything the hints do not pin down (``Any``, unions of several types) goes
# through :func:`_encode`, so the two always agree (tests/hub/test_casecodec.py).

_IDENTITY = (str, int, bool, type(None))


def _expression(tp: Any, src: str, names: dict[str, Any], depth: int = 0) -> str:
    """Python source of the JSON value of ``src``, an expression of type ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in _IDENTITY or origin is typing.Literal:
        return src
    if origin in (Union, types.UnionType):
        others = [a for a in args if a is not type(None)]
        if len(others) == 1 and len(args) == 2:
            inner = _expression(others[0], src, names, depth)
            return src if inner == src else f"(None if {src} is None else {inner})"
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = f"_x{depth}"
        inner = _expression(args[0], item, names, depth + 1)
        return f"list({src})" if inner == item else f"[{inner} for {item} in {src}]"
    elif isinstance(tp, type):
        if tp in _SHARED:
            return f"_encode_shared({src})"
        if dataclasses.is_dataclass(tp):
            name = f"_enc_{tp.__name__}"
            names[name] = _compiled(tp)
            return f"{name}({src})"
        if issubclass(tp, Enum):
            return f"{src}.value"
        if tp in (datetime, date):
            return f"{src}.isoformat()"
    return f"_encode({src})"


@cache
def _compiled(cls: type) -> Any:
    """The compiled encoder of dataclass ``cls`` (see above)."""
    names: dict[str, Any] = {"_encode": _encode, "_encode_shared": _encode_shared}
    hints = _hints(cls)
    fields = _init_fields(cls) or ()
    entries = ", ".join(f"{f!r}: {_expression(hints[f], f'v.{f}', names)}" for f in fields)
    exec(f"def encode(v):\n    return {{{entries}}}\n", names)
    return names["encode"]


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def encode_case(case: Case) -> str:
    """JSON text of a folded case (its catalog entry's text written once per entry)."""
    value = _compiled(Case)(case)
    del value["terms"]
    terms = _by_identity(_terms_text, case.terms, lambda: _dumps(_encode_shared(case.terms)))
    return _dumps(value)[:-1] + ',"terms":' + terms + "}"


def decode_case(text: str) -> Case:
    """Inverse of :func:`encode_case`; :class:`CodecError` when the shape changed."""
    try:
        value = _decode(Case, orjson.loads(text))
    except (ValueError, TypeError, KeyError) as exc:
        raise CodecError(str(exc)) from None
    assert isinstance(value, Case)
    return value
