"""HTTP binding of the sync protocol: request signing, aiohttp client and server helpers.

The one part of :mod:`protocol` allowed to do I/O and import aiohttp (STYLE.md). The
signing and backoff modules stay pure; ``client`` and ``server`` wrap aiohttp.
"""

from __future__ import annotations

from .backoff import Backoff
from .client import PeerClient, PeerError, PeerFailure, PeerUnavailable
from .server import (
    RAW_BODY_KEY,
    RUNNER_KWARGS,
    VERIFIED_KEY,
    authenticate,
    decode_body,
    error_response,
    protocol_errors_middleware,
    read_json_body,
    read_raw_body,
    status_for,
    target_uri,
)
from .signing import (
    COVERED_COMPONENTS,
    MemoryNonceCache,
    NonceCache,
    VerifiedRequest,
    content_digest,
    sign_request,
    verify_request,
)

__all__ = [
    "COVERED_COMPONENTS",
    "RAW_BODY_KEY",
    "RUNNER_KWARGS",
    "VERIFIED_KEY",
    "Backoff",
    "MemoryNonceCache",
    "NonceCache",
    "PeerClient",
    "PeerError",
    "PeerFailure",
    "PeerUnavailable",
    "VerifiedRequest",
    "authenticate",
    "content_digest",
    "decode_body",
    "error_response",
    "protocol_errors_middleware",
    "read_json_body",
    "read_raw_body",
    "sign_request",
    "status_for",
    "target_uri",
    "verify_request",
]
