"""Content-addressed blob store on real files: blobs, resumable uploads, names from outside."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from protocol.errors import RemoteProtocolError
from protocol.http import blobs
from protocol.http.blobs import BlobStore, check_hash, check_upload_id, sha256_hex, sniff

SCAN = "身份证正反面扫描件".encode() * 100
EMPTY_HASH = hashlib.sha256(b"").hexdigest()
OTHER_HASH = hashlib.sha256(b"other").hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def partials(store: BlobStore) -> list[str]:
    return sorted(p.name for p in store.partial_dir.iterdir())


def blob_files(store: BlobStore) -> list[Path]:
    return sorted(p for p in store.root.rglob("*") if p.is_file() and p.parent != store.partial_dir)


# -- blobs ---------------------------------------------------------------------------------------


def test_a_new_store_has_only_its_partial_dir(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "a" / "b"))
    assert store.root == tmp_path / "a" / "b" and store.partial_dir.is_dir()
    assert list(store.root.iterdir()) == [store.partial_dir]
    BlobStore(store.root)  # opening it again is fine


@pytest.mark.parametrize("data", [b"", b"x", SCAN], ids=["empty", "one byte", "scan"])
def test_put_has_size_read(store: BlobStore, data: bytes) -> None:
    blob = store.put(data)
    assert blob == hashlib.sha256(data).hexdigest() == sha256_hex(data)
    assert store.path(blob) == store.root / blob[:2] / blob[2:4] / blob
    assert store.has(blob) and store.size(blob) == len(data) and store.read(blob) == data
    assert b"".join(store.iter_chunks(blob)) == data
    assert blob_files(store) == [store.path(blob)]


def test_put_with_the_expected_hash(store: BlobStore) -> None:
    assert store.put(SCAN, expected=sha256_hex(SCAN)) == sha256_hex(SCAN)
    assert store.read(sha256_hex(SCAN)) == SCAN


@pytest.mark.parametrize(
    ("offset", "size", "chunks"),
    [
        (0, blobs.CHUNK, [b"0123456789"]),
        (0, 4, [b"0123", b"4567", b"89"]),
        (0, 5, [b"01234", b"56789"]),
        (3, 4, [b"3456", b"789"]),
        (9, 4, [b"9"]),
        (10, 4, []),
        (20, 4, []),
        (0, 1, [bytes([c]) for c in b"0123456789"]),
    ],
)
def test_iter_chunks(store: BlobStore, offset: int, size: int, chunks: list[bytes]) -> None:
    blob = store.put(b"0123456789")
    assert list(store.iter_chunks(blob, offset, size)) == chunks


def test_unknown_blob(store: BlobStore) -> None:
    assert not store.has(OTHER_HASH)
    with pytest.raises(RemoteProtocolError) as err:
        store.read(OTHER_HASH)
    assert err.value.reason == "no_such_blob" and OTHER_HASH in err.value.detail


def test_put_with_a_wrong_expected_hash_stores_nothing(store: BlobStore) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        store.put(SCAN, expected=OTHER_HASH)
    assert err.value.reason == "hash_mismatch" and sha256_hex(SCAN) in err.value.detail
    assert not store.has(sha256_hex(SCAN)) and not store.has(OTHER_HASH)
    assert list(store.root.iterdir()) == [store.partial_dir] and partials(store) == []


def test_put_with_a_malformed_expected_hash(store: BlobStore) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        store.put(SCAN, expected=sha256_hex(SCAN).upper())
    assert err.value.reason == "bad_blob_id" and not store.has(sha256_hex(SCAN))


def test_put_twice_is_idempotent(store: BlobStore) -> None:
    first = store.put(SCAN)
    inode = store.path(first).stat().st_ino
    assert store.put(SCAN) == first == store.put(SCAN, expected=first)
    assert store.path(first).stat().st_ino == inode  # left alone, not rewritten
    assert blob_files(store) == [store.path(first)] and partials(store) == []


def test_two_blobs_share_directories(store: BlobStore) -> None:
    names = {store.put(bytes([n])) for n in range(64)}
    assert len(names) == 64 and {p.name for p in blob_files(store)} == names
    assert all(store.read(sha256_hex(bytes([n]))) == bytes([n]) for n in range(64))


BAD_BLOB_IDS: list[Any] = [
    "",
    "ab",
    "0" * 63,
    "0" * 65,
    "A" * 64,  # uppercase
    sha256_hex(b"x").upper(),
    "g" * 64,
    " " + "0" * 63,
    "0" * 64 + "\n",
    "../" + "0" * 61,
    "../../../../etc/passwd",
    "00/00/" + "0" * 58,
    "0" * 32 + "/" + "0" * 31,
    None,
    64,
]


@pytest.mark.parametrize("blob", BAD_BLOB_IDS)
@pytest.mark.parametrize(
    "use",
    [
        BlobStore.path,
        BlobStore.has,
        BlobStore.size,
        BlobStore.read,
        lambda s, b: next(s.iter_chunks(b)),
        lambda s, b: s.finish(s.new_upload(), b),
        lambda _, b: check_hash(b),
    ],
    ids=["path", "has", "size", "read", "iter_chunks", "finish", "check_hash"],
)
def test_bad_blob_ids(store: BlobStore, use: Callable[[BlobStore, Any], object], blob: Any) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        use(store, blob)
    assert err.value.reason == "bad_blob_id"


def test_check_hash_returns_the_id() -> None:
    assert check_hash(EMPTY_HASH) is EMPTY_HASH


# -- resumable uploads (tus) -------------------------------------------------------------------


def test_new_upload(store: BlobStore) -> None:
    first, second = store.new_upload(), store.new_upload()
    assert first != second and check_upload_id(first) == first
    assert store.offset(first) == 0 and (store.partial_dir / first).is_file()
    assert partials(store) == sorted([first, second])


def test_append_then_finish(store: BlobStore) -> None:
    upload = store.new_upload()
    parts = [SCAN[:1000], SCAN[1000:1001], b"", SCAN[1001:]]
    held = 0
    for part in parts:
        held = store.append(upload, held, part)
        assert store.offset(upload) == held
    assert held == len(SCAN)
    assert store.finish(upload, sha256_hex(SCAN)) == sha256_hex(SCAN)
    assert store.read(sha256_hex(SCAN)) == SCAN
    assert partials(store) == []  # the partial became the blob
    with pytest.raises(RemoteProtocolError) as err:
        store.offset(upload)
    assert err.value.reason == "no_such_upload"


def test_finish_an_empty_upload(store: BlobStore) -> None:
    upload = store.new_upload()
    assert store.finish(upload, EMPTY_HASH) == EMPTY_HASH and store.read(EMPTY_HASH) == b""


def test_a_restarted_store_resumes_at_the_held_offset(store: BlobStore) -> None:
    upload = store.new_upload()
    store.append(upload, 0, SCAN[:100])
    again = BlobStore(store.root)
    assert again.offset(upload) == 100
    assert again.append(upload, 100, SCAN[100:]) == len(SCAN)
    assert again.finish(upload, sha256_hex(SCAN)) == sha256_hex(SCAN)


@pytest.mark.parametrize("offset", [0, 3, 5, -1, 10**9])
def test_append_at_the_wrong_offset_writes_nothing(store: BlobStore, offset: int) -> None:
    upload = store.new_upload()
    store.append(upload, 0, b"abcd")
    with pytest.raises(RemoteProtocolError) as err:
        store.append(upload, offset, b"efgh")
    assert err.value.reason == "offset_mismatch" and "held offset is 4" in err.value.detail
    assert (store.partial_dir / upload).read_bytes() == b"abcd"


@pytest.mark.parametrize(
    "use",
    [
        lambda s, u: s.offset(u),
        lambda s, u: s.append(u, 0, b"x"),
    ],
    ids=["offset", "append"],
)
def test_unknown_upload(store: BlobStore, use: Callable[[BlobStore, str], object]) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        use(store, "A" * 24)
    assert err.value.reason == "no_such_upload"
    assert partials(store) == []  # append did not create it


def test_finish_with_a_wrong_hash_deletes_the_partial(store: BlobStore) -> None:
    upload = store.new_upload()
    store.append(upload, 0, SCAN)
    with pytest.raises(RemoteProtocolError) as err:
        store.finish(upload, OTHER_HASH)
    assert err.value.reason == "hash_mismatch" and sha256_hex(SCAN) in err.value.detail
    assert partials(store) == [] and blob_files(store) == []
    assert not store.has(OTHER_HASH) and not store.has(sha256_hex(SCAN))


def test_finish_with_a_malformed_hash_keeps_the_partial(store: BlobStore) -> None:
    upload = store.new_upload()
    store.append(upload, 0, SCAN)
    with pytest.raises(RemoteProtocolError) as err:
        store.finish(upload, "not a hash")
    assert err.value.reason == "bad_blob_id" and store.offset(upload) == len(SCAN)


def test_finish_when_the_blob_is_already_held(store: BlobStore) -> None:
    blob = store.put(SCAN)
    inode = store.path(blob).stat().st_ino
    upload = store.new_upload()
    store.append(upload, 0, SCAN)
    assert store.finish(upload, blob) == blob
    assert store.path(blob).stat().st_ino == inode and store.read(blob) == SCAN
    assert partials(store) == []


def test_discard(store: BlobStore) -> None:
    upload, kept = store.new_upload(), store.new_upload()
    store.append(upload, 0, b"half")
    store.discard(upload)
    store.discard(upload)  # twice is fine
    assert partials(store) == [kept]
    with pytest.raises(RemoteProtocolError) as err:
        store.offset(upload)
    assert err.value.reason == "no_such_upload"


BAD_UPLOAD_IDS: list[Any] = [
    "../x",
    "../" + "a" * 20,
    "../../../../etc/passwd",
    "short",
    "a" * 15,
    "a" * 65,
    "",
    "a" * 20 + "/b",
    "a" * 20 + "\n",
    "a" * 20 + ".",
    "a" * 10 + " " + "a" * 10,
    "上传" * 10,
    None,
    12345678901234567890,
]


@pytest.mark.parametrize("upload", BAD_UPLOAD_IDS)
@pytest.mark.parametrize(
    "use",
    [
        BlobStore.offset,
        lambda s, u: s.append(u, 0, b"x"),
        lambda s, u: s.finish(u, EMPTY_HASH),
        BlobStore.discard,
        lambda _, u: check_upload_id(u),
    ],
    ids=["offset", "append", "finish", "discard", "check_upload_id"],
)
def test_bad_upload_ids(
    store: BlobStore, use: Callable[[BlobStore, Any], object], upload: Any
) -> None:
    victim = store.root / "x"
    victim.write_bytes(b"keep")  # what "../x" would reach from partial/
    with pytest.raises(RemoteProtocolError) as err:
        use(store, upload)
    assert err.value.reason == "bad_upload_id"
    assert victim.read_bytes() == b"keep" and not store.has(EMPTY_HASH)


# -- durability --------------------------------------------------------------------------------


def test_after_put_the_blob_is_complete_and_no_temp_file_remains(store: BlobStore) -> None:
    upload = store.new_upload()  # an upload in progress is not a temp file
    for n in range(5):
        data = SCAN * (n + 1)
        blob = store.put(data)
        assert store.path(blob).read_bytes() == data
        assert partials(store) == [upload]


def test_put_fsyncs_the_file_and_its_directory(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_files: list[int] = []
    synced_dirs: list[Path] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced_files.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)  # the module's os is this os
    monkeypatch.setattr(blobs, "_fsync_dir", synced_dirs.append)
    blob = store.put(SCAN)
    assert synced_files and store.path(blob).parent in synced_dirs


def test_fsync_dir(tmp_path: Path) -> None:
    blobs._fsync_dir(tmp_path)  # a real directory on a real file system


def test_fsync_dir_on_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the module's view of ``os`` pretends to be Windows: a directory cannot be opened.
    monkeypatch.setattr(blobs, "os", SimpleNamespace(name="nt"))
    blobs._fsync_dir(tmp_path)


# -- found while writing these tests (see the report) ---------------------------------------------


def test_finish_an_unknown_upload(store: BlobStore) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        store.finish("A" * 24, EMPTY_HASH)
    assert err.value.reason == "no_such_upload"


@pytest.mark.parametrize(
    "use",
    [BlobStore.size, lambda s, b: next(s.iter_chunks(b))],
    ids=["size", "iter_chunks"],
)
def test_an_unknown_blob_is_no_such_blob(
    store: BlobStore, use: Callable[[BlobStore, str], object]
) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        use(store, OTHER_HASH)
    assert err.value.reason == "no_such_blob"


def test_put_fsyncs_every_directory_it_creates(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(blobs, "_fsync_dir", synced.append)
    blob = store.put(SCAN)
    leaf = store.path(blob).parent
    assert {leaf, leaf.parent, store.root} <= set(synced)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\xff\xd8\xff\xe0JFIF", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"GIF89a", "image/gif"),
        (b"<html><script>", "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_sniff_shows_only_what_the_bytes_are(head: bytes, kind: str, tmp_path: Path) -> None:
    assert sniff(head) == kind
    store = BlobStore(tmp_path)
    assert store.content_type(store.put(head + b"rest of the file")) == kind
