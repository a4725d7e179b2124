"""tus 1.0 endpoints for materials (docs/protocol.md §9.3) and blob downloads."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from protocol.errors import RemoteProtocolError
from protocol.http.blobs import check_hash, check_upload_id
from protocol.http.server import RAW_BODY_KEY, read_raw_body
from protocol.http.tus import (
    blob_hash_of,
    check_patch_content_type,
    check_tus_resumable,
    options_headers,
    parse_upload_length,
    parse_upload_offset,
    tus_headers,
    verify_checksum,
)

from ..services import blobs, staff
from ..services.blobs import MAX_BLOB_BYTES
from ..services.staff import SESSION_COOKIE
from .common import authenticate_member, hub_of

MAX_CHUNK_BYTES: Final = 8 * 1024 * 1024
UPLOADS_PATH: Final = "/v1/blobs/uploads/"


def _location(request: web.Request, upload: str) -> str:
    base = hub_of(request).settings.public_base
    prefix = "" if base is None else base.rstrip("/")
    return f"{prefix}{UPLOADS_PATH}{upload}"


async def options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=options_headers(MAX_BLOB_BYTES))


async def create(request: web.Request) -> web.Response:
    check_tus_resumable(request.headers)
    length = parse_upload_length(request.headers, MAX_BLOB_BYTES)
    blob = blob_hash_of(request.headers)
    uploader = await authenticate_member(request, 0)
    state = await blobs.create_upload(hub_of(request), uploader, blob, length)
    headers = tus_headers(upload_offset=state.offset, upload_length=state.length)
    if state.upload is None:
        return web.Response(status=200, headers=headers)
    # A resumed upload is 201 as well, with the offset held: 200 means "held, send nothing".
    headers["Location"] = _location(request, state.upload)
    return web.Response(status=201, headers=headers)


async def head(request: web.Request) -> web.Response:
    check_tus_resumable(request.headers)
    upload = check_upload_id(request.match_info["upload"])
    uploader = await authenticate_member(request, 0)
    state = await blobs.upload_state(hub_of(request), uploader, upload)
    headers = tus_headers(upload_offset=state.offset, upload_length=state.length)
    headers["Cache-Control"] = "no-store"
    return web.Response(status=200, headers=headers)


async def patch(request: web.Request) -> web.Response:
    check_tus_resumable(request.headers)
    upload = check_upload_id(request.match_info["upload"])
    check_patch_content_type(request.headers)
    offset = parse_upload_offset(request.headers)
    uploader = await authenticate_member(request, MAX_CHUNK_BYTES)
    chunk = request.get(RAW_BODY_KEY)
    if chunk is None:
        chunk = await read_raw_body(request, MAX_CHUNK_BYTES)
    verify_checksum(request.headers, chunk)
    state = await blobs.append_chunk(hub_of(request), uploader, upload, offset, chunk)
    return web.Response(status=204, headers=tus_headers(upload_offset=state.offset))


async def download(request: web.Request) -> web.StreamResponse:
    """A blob, to the hub's staff or to a member allowed to see an event naming it."""
    hub = hub_of(request)
    blob = check_hash(request.match_info["blob"])
    if SESSION_COOKIE in request.cookies:
        if await staff.session_of(hub, request.cookies[SESSION_COOKIE]) is None:
            raise RemoteProtocolError("not_logged_in", "请先登录")
    else:
        member = await authenticate_member(request, 0)
        if not await hub.store.may_read_blob(blob, member):
            federation = hub.view.federation
            if federation is not None and member in federation.home.peers:
                raise RemoteProtocolError("not_yours", f"peer {member} did not route this blob")
            raise RemoteProtocolError("forbidden", f"{member} may not read this blob")
    path, content_type = await blobs.blob_file(hub, blob)
    response = web.FileResponse(path)
    response.content_type = content_type
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
