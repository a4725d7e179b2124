"""Content-addressed blob store on disk (materials: scans, photos, PDFs).

A blob's name is the hex SHA-256 of its bytes; it lives at ``<root>/ab/cd/<hash>``. Writes go
to a temp file that is fsynced and then renamed into place (and the directory fsynced), so a
blob either exists complete and verified or not at all, whatever the power does. Partial
uploads (tus) live under ``<root>/partial/<upload id>`` and are appended with fsync, so a
restarted server resumes at the last byte it acknowledged.

Names from the outside are validated before they touch a path (never trust a client path).
The methods do blocking file I/O: call them through ``asyncio.to_thread`` from a server.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

from protocol.errors import RemoteProtocolError

HASH_RE = re.compile(r"^[0-9a-f]{64}\Z")
# Types a material may be shown as in a browser, recognised by their first bytes. Anything
# else is served as an opaque download: a file a client called text/html never renders.
_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
)
OPAQUE = "application/octet-stream"
UPLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")
CHUNK = 1024 * 1024


def check_hash(value: str) -> str:
    """Return ``value`` if it is a blob id (64 lowercase hex digits), else ``bad_blob_id``."""
    if not isinstance(value, str) or not HASH_RE.match(value):
        raise RemoteProtocolError("bad_blob_id", "a blob id is 64 lowercase hex digits")
    return value


def check_upload_id(value: str) -> str:
    """Return ``value`` if it is an upload id we could have issued, else ``bad_upload_id``."""
    if not isinstance(value, str) or not UPLOAD_RE.match(value):
        raise RemoteProtocolError("bad_upload_id", "not an upload id")
    return value


def sniff(head: bytes) -> str:
    """The content type to show a material with, from its first bytes (never HTML)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return OPAQUE


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # Windows cannot open a directory for fsync; NTFS journals renames
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    """Blobs under one root directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.partial_dir = self.root / "partial"
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        # Appends to one upload must not interleave (threads of one server). Across hub
        # workers the hub serialises each upload with a database row lock.
        self._append_lock = threading.Lock()

    def path(self, blob: str) -> Path:
        """Where blob ``blob`` lives (validated)."""
        check_hash(blob)
        return self.root / blob[:2] / blob[2:4] / blob

    def has(self, blob: str) -> bool:
        return self.path(blob).is_file()

    def size(self, blob: str) -> int:
        try:
            return self.path(blob).stat().st_size
        except FileNotFoundError:
            raise RemoteProtocolError("no_such_blob", f"blob {blob} is not held") from None

    def content_type(self, blob: str) -> str:
        """How the blob may be shown in a browser (see :func:`sniff`)."""
        with self.path(blob).open("rb") as f:
            return sniff(f.read(16))

    def read(self, blob: str) -> bytes:
        try:
            return self.path(blob).read_bytes()
        except FileNotFoundError:
            raise RemoteProtocolError("no_such_blob", f"blob {blob} is not held") from None

    def iter_chunks(self, blob: str, offset: int = 0, size: int = CHUNK) -> Iterator[bytes]:
        """The blob's bytes from ``offset`` in chunks (for uploads and downloads)."""
        if not self.has(blob):
            raise RemoteProtocolError("no_such_blob", f"blob {blob} is not held")
        with self.path(blob).open("rb") as f:
            f.seek(offset)
            while chunk := f.read(size):
                yield chunk

    def put(self, data: bytes, expected: str | None = None) -> str:
        """Store ``data`` durably; returns its hash (``hash_mismatch`` if not ``expected``)."""
        blob = sha256_hex(data)
        if expected is not None and check_hash(expected) != blob:
            raise RemoteProtocolError("hash_mismatch", f"content hashes to {blob}, not {expected}")
        if self.has(blob):
            return blob
        tmp = self.partial_dir / f"put-{secrets.token_hex(8)}"
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self._install(tmp, blob)
        return blob

    def _install(self, tmp: Path, blob: str) -> None:
        final = self.path(blob)
        fan_out = [final.parent.parent, final.parent]  # <root>/ab and <root>/ab/cd
        created = [d for d in fan_out if not d.is_dir()]
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        # The rename is durable once the directory holding it is synced, and so is each
        # fan-out directory made just now once its own parent is.
        _fsync_dir(final.parent)
        for directory in created:
            _fsync_dir(directory.parent)

    # -- partial uploads (tus) ---------------------------------------------------------

    def new_upload(self) -> str:
        """A fresh upload id with an empty partial file."""
        upload = secrets.token_urlsafe(18)
        (self.partial_dir / upload).touch()
        _fsync_dir(self.partial_dir)
        return upload

    def offset(self, upload: str) -> int:
        """Bytes held for an upload (``no_such_upload`` if unknown)."""
        try:
            return (self.partial_dir / check_upload_id(upload)).stat().st_size
        except FileNotFoundError:
            raise RemoteProtocolError("no_such_upload", "unknown or finished upload") from None

    def append(self, upload: str, offset: int, chunk: bytes) -> int:
        """Append ``chunk`` at ``offset`` (which must be the held size); returns the new size."""
        with self._append_lock:
            held = self.offset(upload)
            if offset != held:
                raise RemoteProtocolError("offset_mismatch", f"held offset is {held}, not {offset}")
            with (self.partial_dir / upload).open("ab") as f:
                f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            return held + len(chunk)

    def finish(self, upload: str, expected: str) -> str:
        """Verify the complete upload against ``expected`` and install it as a blob."""
        check_hash(expected)
        self.offset(upload)  # no_such_upload for an unknown or finished upload
        part = self.partial_dir / upload
        digest = hashlib.sha256()
        with part.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            part.unlink(missing_ok=True)
            raise RemoteProtocolError(
                "hash_mismatch", f"upload hashes to {digest.hexdigest()}, not {expected}"
            )
        if self.has(expected):
            part.unlink(missing_ok=True)
        else:
            self._install(part, expected)
        return expected

    def discard(self, upload: str) -> None:
        (self.partial_dir / check_upload_id(upload)).unlink(missing_ok=True)
