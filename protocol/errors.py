"""Typed protocol errors.

Every error carries a machine-readable ``reason`` (a short snake_case code that a client can
switch on and that the HTTP binding puts in ``{"error": reason}``), a human ``detail`` and the
party at fault, after h11: :class:`LocalProtocolError` means *we* tried to build or send
something invalid; :class:`RemoteProtocolError` means what we received from a peer is invalid.
Crypto and fold code never raise HTTP errors; the binding translates these.
"""

from __future__ import annotations

from typing import Literal

Fault = Literal["local", "remote"]


class ProtocolError(Exception):
    """Base of every error the protocol core raises on purpose."""

    fault: Fault = "remote"

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    def as_dict(self) -> dict[str, str]:
        """The machine-readable form used in acks and 4xx bodies."""
        return {"error": self.reason, "detail": self.detail, "fault": self.fault}


class LocalProtocolError(ProtocolError):
    """We are at fault: the caller built something the protocol forbids."""

    fault: Fault = "local"


class RemoteProtocolError(ProtocolError):
    """The peer is at fault: what it sent us breaks the protocol."""

    fault: Fault = "remote"


def blame(exc: ProtocolError, fault: Fault) -> ProtocolError:
    """Re-raise-friendly copy of ``exc`` attributed to ``fault``."""
    cls = LocalProtocolError if fault == "local" else RemoteProtocolError
    return cls(exc.reason, exc.detail)
