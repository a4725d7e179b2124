"""Structured logs: one ``key=value`` line per record, personal data scrubbed.

Use :func:`log` so every line carries an event name and fields::

    log(logger, "case.accepted", case=number, matter=code)

prints ``ts=2026-11-23T09:30:00+08:00 level=info logger=node.services event=case.accepted
case=210102001001-20261123-0001 matter=SY-SFJ-0003``. Every value and the message pass
through :func:`node.privacy.scrub`, so an ID number or phone number that slips into a log
call is masked anyway.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from .privacy import scrub

_FIELDS = "tongban_fields"


def _quote(value: object) -> str:
    text = scrub(str(value))
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    """Formats a record as ``ts=… level=… logger=… event=… key=value …``."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        parts = [
            f"ts={at}",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"event={_quote(record.getMessage())}",
        ]
        fields: dict[str, Any] = getattr(record, _FIELDS, {})
        parts.extend(f"{key}={_quote(value)}" for key, value in fields.items())
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def log(logger: logging.Logger, what: str, /, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log the event ``what`` with ``fields`` as key=value pairs."""
    if logger.isEnabledFor(level):
        logger.log(level, what, extra={_FIELDS: fields})


def setup_logging(level: int = logging.INFO) -> None:
    """Send every ``node``/``protocol`` log line to stderr in key=value form."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would print query strings (search terms may be names): keep quiet.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
