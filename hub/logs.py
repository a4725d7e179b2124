"""Structured logs: one ``key=value`` line per happening, personal data masked.

``log(logger, "push.stored", author=..., n=3)`` writes ``event=push.stored author=… n=3``.
Every line goes through :func:`mask` on its way out (a formatter, so third-party messages are
covered too): an 18-character resident ID number keeps its first four and last four
characters (``2101**********1234``, DOMAIN.md rule 8) and a mobile number its first three
and last four.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])([0-9]{4})[0-9]{10}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")
_BARE = re.compile(r"^[^\s=\"]+$")


def mask(text: str) -> str:
    """Mask resident ID numbers and mobile numbers in free text."""
    text = _ID_NUMBER.sub(lambda m: f"{m.group(1)}{'*' * 10}{m.group(2)}", text)
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def _value(value: Any) -> str:
    text = str(value)
    if text and _BARE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def fields(event: str, **values: Any) -> str:
    """The ``key=value`` line for a happening."""
    parts = [f"event={event}"]
    parts += [f"{k}={_value(v)}" for k, v in values.items() if v is not None]
    return " ".join(parts)


def log(logger: logging.Logger, event: str, level: int = logging.INFO, **values: Any) -> None:
    """Log one happening as a structured line."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s", fields(event, **values))


class MaskingFormatter(logging.Formatter):
    """``ts level logger key=value…`` with personal data masked in the whole line."""

    def __init__(self) -> None:
        super().__init__("ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def setup_logging(level: int = logging.INFO) -> None:
    """Route the root logger through :class:`MaskingFormatter` (for ``tongban hub run``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(MaskingFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
