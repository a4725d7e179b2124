"""Materials (blobs) over tus 1.0: create or resume an upload, append checked chunks, verify.

Only a complete blob whose SHA-256 matches its name counts as held (the ``blobs`` table); a
blob already held answers the creation request as complete, so it is never sent twice
(只提交一次材料). An unfinished upload of the same blob by the same uploader is resumed
rather than started again, so a node that lost its upload URL (killed mid-upload) still
continues from the last byte the hub holds. Partial bytes live in the blob store's
``partial/`` directory, appended with fsync, so the offset survives a hub restart.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from protocol.errors import ProtocolError, RemoteProtocolError
from protocol.http.blobs import check_hash, check_upload_id

from ..core import Hub
from ..logs import log

MAX_BLOB_BYTES: Final = 50 * 1024 * 1024
logger = logging.getLogger("tongban.hub.blobs")
# One PATCH at a time per upload; a lock lives while some request holds a reference to it.
_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class UploadState:
    """What a tus answer reports: where the upload stands (``upload`` None: already held)."""

    upload: str | None
    offset: int
    length: int


async def _held(hub: Hub, blob: str) -> int | None:
    length = await hub.store.blob_length(blob)
    if length is None or not await asyncio.to_thread(hub.blobs.has, blob):
        return None
    return length


async def create_upload(hub: Hub, uploader: str, blob: str, length: int) -> UploadState:
    """Creation: held → complete at once; an open upload of ours → resume; else a new one."""
    check_hash(blob)
    held = await _held(hub, blob)
    if held is not None:
        if held != length:
            raise RemoteProtocolError("length_mismatch", f"blob {blob[:16]}… has {held} bytes")
        return UploadState(None, length, length)
    if length == 0:
        await asyncio.to_thread(hub.blobs.put, b"", blob)
        await hub.store.add_blob(blob, 0, hub.now())
        return UploadState(None, 0, 0)
    existing = await hub.store.db.read("open_upload", hub.store.open_upload_txn, blob, uploader)
    if existing is not None and existing.length == length:
        try:
            offset = await asyncio.to_thread(hub.blobs.offset, existing.id)
        except ProtocolError:
            await hub.store.drop_upload(existing.id)  # its partial file is gone: start over
        else:
            return UploadState(existing.id, offset, length)
    upload = await asyncio.to_thread(hub.blobs.new_upload)
    now = hub.now()
    await hub.store.db.run(
        "create_upload",
        lambda c: hub.store.create_upload_txn(c, upload, blob, length, uploader, now),
    )
    log(logger, "blob.upload_created", uploader=uploader, blob=blob[:16], length=length)
    return UploadState(upload, 0, length)


async def _own_upload(hub: Hub, uploader: str, upload: str) -> tuple[str, int, bool]:
    """(blob, length, completed) of an upload the caller started; ``no_such_upload`` else."""
    check_upload_id(upload)
    found = await hub.store.upload(upload)
    if found is None or found.uploader != uploader:
        raise RemoteProtocolError("no_such_upload", "unknown upload (or not yours)")
    return found.hash, found.length, found.completed_at is not None


async def upload_state(hub: Hub, uploader: str, upload: str) -> UploadState:
    """HEAD: the offset held for an upload."""
    _, length, done = await _own_upload(hub, uploader, upload)
    if done:
        return UploadState(upload, length, length)
    return UploadState(upload, await asyncio.to_thread(hub.blobs.offset, upload), length)


async def append_chunk(
    hub: Hub, uploader: str, upload: str, offset: int, chunk: bytes
) -> UploadState:
    """PATCH: append a chunk (already checked against its checksum) at the held offset.

    When the last byte arrives the whole blob is hashed; a mismatch discards the upload
    (``hash_mismatch``), a match makes the blob held.
    """
    blob, length, done = await _own_upload(hub, uploader, upload)
    if done:
        raise RemoteProtocolError("offset_mismatch", f"upload complete at {length}")
    lock = _locks.get(upload)
    if lock is None:
        lock = _locks[upload] = asyncio.Lock()
    async with lock:
        held = await asyncio.to_thread(hub.blobs.offset, upload)
        if offset != held:
            raise RemoteProtocolError("offset_mismatch", f"held offset is {held}, not {offset}")
        if held + len(chunk) > length:
            raise RemoteProtocolError("exceeds_length", f"the upload has {length} bytes")
        new = await asyncio.to_thread(hub.blobs.append, upload, offset, chunk)
        hub.metrics.blob_bytes_received.inc(len(chunk))
        if new < length:
            return UploadState(upload, new, length)
        try:
            await asyncio.to_thread(hub.blobs.finish, upload, blob)
        except ProtocolError:
            await hub.store.drop_upload(upload)
            log(logger, "blob.hash_mismatch", logging.WARNING, uploader=uploader, blob=blob[:16])
            raise
        await hub.store.complete_upload(upload, blob, length, hub.now())
        hub.metrics.blobs_completed.inc()
        log(logger, "blob.complete", uploader=uploader, blob=blob[:16], length=length)
        return UploadState(upload, length, length)


async def blob_file(hub: Hub, blob: str) -> tuple[Path, str]:
    """The file of a held blob and its content type (``no_such_blob`` otherwise)."""
    check_hash(blob)
    if await _held(hub, blob) is None:
        raise RemoteProtocolError("no_such_blob", f"blob {blob[:16]}… is not held here")
    return hub.blobs.path(blob), await asyncio.to_thread(hub.blobs.content_type, blob)
