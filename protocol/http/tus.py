"""tus 1.0.0 resumable upload, server side: header parsing and answers (docs/protocol.md §9.3).

Core, creation and checksum extensions only. Pure functions over a header mapping (an aiohttp
``CIMultiDictProxy`` or any case-insensitive mapping), so a hub or a test can use them with
any server; failures are :class:`~protocol.errors.RemoteProtocolError` whose reason maps to
the status tus prescribes through :data:`TUS_STATUS`:

==================  =====  ===========================================================
``tus_version``     412    ``Tus-Resumable`` missing or not ``1.0.0``
``offset_mismatch`` 409    ``Upload-Offset`` is not the offset the server holds
``checksum_mismatch`` 460  the chunk does not match ``Upload-Checksum`` (nothing stored)
``blob_too_large``  413    ``Upload-Length`` over the server's ``Tus-Max-Size``
``bad_content_type`` 415   a PATCH that is not ``application/offset+octet-stream``
``no_such_upload``  404    an upload id the server does not know (or not yours)
==================  =====  ===========================================================

Anything else (a malformed header) is 400. ``Upload-Metadata`` carries ``sha256`` = base64
of the blob's hex SHA-256 (standard base64 with padding, as tus specifies), so the server
knows the content address before the first byte and can answer "already held" at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Final

from ..errors import RemoteProtocolError
from .blobs import check_hash

TUS_VERSION: Final = "1.0.0"
TUS_EXTENSIONS: Final = "creation,checksum"
CHECKSUM_ALGORITHMS: Final = "sha256"
OFFSET_CONTENT_TYPE: Final = "application/offset+octet-stream"
METADATA_HASH_KEY: Final = "sha256"
CHECKSUM_MISMATCH_STATUS: Final = 460

TUS_STATUS: Final[Mapping[str, int]] = {
    "tus_version": 412,
    "offset_mismatch": 409,
    "checksum_mismatch": CHECKSUM_MISMATCH_STATUS,
    "blob_too_large": 413,
    "bad_content_type": 415,
    "no_such_upload": 404,
}

_DIGITS = re.compile(r"^[0-9]{1,19}\Z")
_METADATA_KEY = re.compile(r"^[!-+\--~]+\Z")  # printable ASCII without space and comma


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else value.strip()


def check_tus_resumable(headers: Mapping[str, str]) -> None:
    """Every request but OPTIONS must speak tus 1.0.0."""
    if _header(headers, "Tus-Resumable") != TUS_VERSION:
        raise RemoteProtocolError("tus_version", f"this server speaks Tus-Resumable {TUS_VERSION}")


def tus_headers(**fields: str | int) -> dict[str, str]:
    """``Tus-Resumable`` plus the given fields (``upload_offset=5`` → ``Upload-Offset: 5``)."""
    out = {"Tus-Resumable": TUS_VERSION}
    for name, value in fields.items():
        out["-".join(part.capitalize() for part in name.split("_"))] = str(value)
    return out


def options_headers(max_size: int) -> dict[str, str]:
    """The answer to ``OPTIONS``: what this server supports."""
    return {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(max_size),
        "Tus-Checksum-Algorithm": CHECKSUM_ALGORITHMS,
    }


def _non_negative(headers: Mapping[str, str], name: str, reason: str) -> int:
    value = _header(headers, name)
    if value is None or not _DIGITS.match(value):
        raise RemoteProtocolError(reason, f"{name} must be a non-negative integer")
    return int(value)


def parse_upload_length(headers: Mapping[str, str], max_size: int) -> int:
    """``Upload-Length`` of a creation request, bounded by ``max_size``."""
    length = _non_negative(headers, "Upload-Length", "bad_upload_length")
    if length > max_size:
        raise RemoteProtocolError("blob_too_large", f"a blob may have at most {max_size} bytes")
    return length


def parse_upload_offset(headers: Mapping[str, str]) -> int:
    return _non_negative(headers, "Upload-Offset", "bad_upload_offset")


def parse_metadata(value: str | None) -> dict[str, bytes | None]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (value optional)."""
    out: dict[str, bytes | None] = {}
    if not value:
        return out
    for pair in value.split(","):
        parts = pair.strip().split(" ")
        if len(parts) not in (1, 2) or not _METADATA_KEY.match(parts[0]):
            raise RemoteProtocolError("bad_metadata", "Upload-Metadata is key base64value, …")
        if parts[0] in out:
            raise RemoteProtocolError("bad_metadata", f"metadata key {parts[0][:20]!r} repeats")
        decoded: bytes | None = None
        if len(parts) == 2:
            try:
                decoded = base64.b64decode(parts[1], validate=True)
            except (binascii.Error, ValueError):
                raise RemoteProtocolError("bad_metadata", "metadata values are base64") from None
        out[parts[0]] = decoded
    return out


def encode_metadata(pairs: Mapping[str, bytes | str]) -> str:
    """Inverse of :func:`parse_metadata` (for clients and tests)."""
    items = []
    for key, value in pairs.items():
        raw = value.encode() if isinstance(value, str) else value
        items.append(f"{key} {base64.b64encode(raw).decode('ascii')}")
    return ",".join(items)


def blob_hash_of(headers: Mapping[str, str]) -> str:
    """The content address announced in ``Upload-Metadata`` (``sha256``), validated."""
    metadata = parse_metadata(_header(headers, "Upload-Metadata"))
    raw = metadata.get(METADATA_HASH_KEY)
    if raw is None:
        raise RemoteProtocolError("bad_metadata", "Upload-Metadata must carry sha256")
    try:
        return check_hash(raw.decode("ascii"))
    except UnicodeDecodeError:
        raise RemoteProtocolError("bad_blob_id", "a blob id is 64 lowercase hex digits") from None


def check_patch_content_type(headers: Mapping[str, str]) -> None:
    content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type != OFFSET_CONTENT_TYPE:
        raise RemoteProtocolError("bad_content_type", f"PATCH bodies are {OFFSET_CONTENT_TYPE}")


def checksum_header(chunk: bytes) -> str:
    """``Upload-Checksum`` value for a chunk (clients)."""
    return "sha256 " + base64.b64encode(hashlib.sha256(chunk).digest()).decode("ascii")


def verify_checksum(headers: Mapping[str, str], chunk: bytes, *, required: bool = True) -> None:
    """Check a PATCH body against ``Upload-Checksum`` (sha256 only)."""
    value = _header(headers, "Upload-Checksum")
    if value is None:
        if required:
            raise RemoteProtocolError("bad_checksum", "Upload-Checksum: sha256 <base64> required")
        return
    parts = value.split(" ")
    if len(parts) != 2:
        raise RemoteProtocolError("bad_checksum", "Upload-Checksum is <algorithm> <base64>")
    if parts[0] != "sha256":
        raise RemoteProtocolError("bad_checksum", "the only checksum algorithm is sha256")
    try:
        digest = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise RemoteProtocolError("bad_checksum", "the checksum is base64") from None
    if hashlib.sha256(chunk).digest() != digest:
        raise RemoteProtocolError("checksum_mismatch", "the chunk does not match its checksum")


def status_of(reason: str) -> int | None:
    """The status tus prescribes for a reason, if any (else the caller's default)."""
    return TUS_STATUS.get(reason)
