"""JSON API handlers (``/api/``): parse, authorize, call a service, render. See docs/api.md."""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web

from protocol.case import CHINA_TIME
from protocol.http.blobs import HASH_RE, OPAQUE

from .appkeys import AUTH, CTX, SESSION, SESSION_COOKIE
from .services import accept, bundles, cases, matters, status, window
from .services.accept import (
    MAX_FILE_BYTES,
    Application,
    MaterialInput,
    Person,
    UploadedFile,
)
from .services.errors import ServiceError, not_found
from .storage import ClerkRow, SessionRow

_CHUNK = 64 * 1024
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_dumps = functools.partial(json.dumps, ensure_ascii=False)


def reply(data: Any, status: int = 200) -> web.Response:
    """A JSON answer with Chinese text as UTF-8 (not \\u escapes)."""
    return web.json_response(data, status=status, dumps=_dumps)


def _session(request: web.Request) -> SessionRow:
    return request[SESSION]


def check_form_csrf(request: web.Request, sent: object) -> None:
    """Raise ``csrf_failed`` unless ``sent`` is the session's CSRF token."""
    session = request.get(SESSION)
    if (
        session is None
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent.encode(), session.csrf.encode())
    ):
        raise ServiceError("csrf_failed", "页面已过期，请刷新后重试。", status=403)


def _admin(request: web.Request) -> ClerkRow:
    clerk = _session(request).clerk
    if clerk.role != "admin":
        raise ServiceError("forbidden", "只有管理员可以进行此操作。", status=403)
    return clerk


def clerk_view(clerk: ClerkRow) -> dict[str, Any]:
    return {
        "id": clerk.id,
        "username": clerk.username,
        "display_name": clerk.display_name,
        "role": clerk.role,
        "active": clerk.active,
        "must_change_password": clerk.password_changed_at is None,
    }


def _bad(message: str, field: str | None = None) -> ServiceError:
    return ServiceError("bad_request", message, field=field)


async def _json(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ServiceError("unsupported_media_type", "请以 JSON 提交。", status=415)
    try:
        obj = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        raise _bad("JSON 格式有误。") from None
    if not isinstance(obj, dict):
        raise _bad("请求体应为 JSON 对象。")
    return obj


def _str(obj: Mapping[str, Any], key: str, *, required: bool = False, where: str = "") -> str:
    value = obj.get(key)
    name = f"{where}{key}"
    if value is None:
        if required:
            raise _bad(f"缺少 {name}。", name)
        return ""
    if not isinstance(value, str):
        raise _bad(f"{name} 应为文本。", name)
    return value


def _day(text: str, field: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise _bad("日期格式应为 YYYY-MM-DD。", field) from None


def _instant(text: str, field: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _bad("时间格式应为 YYYY-MM-DDTHH:MM。", field) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=CHINA_TIME)


def _int(request: web.Request, key: str, default: int) -> int:
    text = request.query.get(key)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise _bad(f"{key} 应为整数。", key) from None


# -- login and accounts ------------------------------------------------------------------


async def login(request: web.Request) -> web.Response:
    body = await _json(request)
    remote = request.remote or "unknown"
    done = await request.app[AUTH].login(
        _str(body, "username", required=True), _str(body, "password", required=True), remote
    )
    response = reply(
        {
            "clerk": clerk_view(done.clerk),
            "csrf_token": done.csrf,
            "expires_at": datetime.fromtimestamp(done.expires_at, CHINA_TIME).isoformat(),
        }
    )
    response.set_cookie(
        SESSION_COOKIE,
        done.token,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
        max_age=int(done.expires_at - request.app[AUTH].now()),
    )
    return response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    await request.app[AUTH].logout(token)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def session_info(request: web.Request) -> web.Response:
    session = _session(request)
    return reply({"clerk": clerk_view(session.clerk), "csrf_token": session.csrf})


async def change_password(request: web.Request) -> web.Response:
    body = await _json(request)
    ctx = request.app[CTX]
    await request.app[AUTH].change_password(
        _session(request).clerk,
        _str(body, "old_password", required=True),
        _str(body, "new_password", required=True),
        ctx.stamp(),
        keep_token=request.cookies.get(SESSION_COOKIE),
    )
    return web.Response(status=204)


async def list_clerks(request: web.Request) -> web.Response:
    _admin(request)
    rows = await request.app[CTX].store.list_clerks()
    return reply({"clerks": [clerk_view(c) for c in rows]})


async def create_clerk(request: web.Request) -> web.Response:
    _admin(request)
    body = await _json(request)
    clerk, password = await request.app[AUTH].create_clerk(
        _str(body, "username", required=True),
        _str(body, "display_name"),
        _str(body, "role") or "clerk",
        request.app[CTX].stamp(),
    )
    return reply({"clerk": clerk_view(clerk), "initial_password": password}, status=201)


# -- station and matters -----------------------------------------------------------------


async def station_info(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    return reply(
        {
            "id": ctx.station.id,
            "name": ctx.station.name,
            "parent_url": ctx.station.parent_url,
            "config": status.config_view(ctx),
            "id_types": accept.ID_TYPES,
            "material_modes": accept.MODE_LABELS,
            "delivery_methods": list(cases.DELIVERY_METHODS),
        }
    )


async def search_matters(request: web.Request) -> web.Response:
    found = matters.search_matters(
        request.app[CTX], request.query.get("q", ""), limit=_int(request, "limit", 50)
    )
    return reply({"matters": found})


async def matter_detail(request: web.Request) -> web.Response:
    return reply(matters.matter_detail(request.app[CTX], request.match_info["code"]))


# -- cases ---------------------------------------------------------------------------------


def _person(obj: Any, where: str, required: bool) -> Person | None:
    if obj is None and not required:
        return None
    if not isinstance(obj, dict):
        raise _bad(f"缺少 {where}。", where)
    return Person(
        name=_str(obj, "name", where=f"{where}."),
        id_number=_str(obj, "id_number", where=f"{where}."),
        id_type=_str(obj, "id_type", where=f"{where}.") or "111",
    )


def parse_application(
    obj: Mapping[str, Any], files: Mapping[str, list[UploadedFile]]
) -> Application:
    """The JSON application (or the flat form turned into it) plus uploaded files."""
    raw = obj.get("materials", [])
    if not isinstance(raw, list):
        raise _bad("materials 应为列表。", "materials")
    modes: dict[str, str] = {}
    reuse: dict[str, tuple[str, ...]] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise _bad("materials 的每一项需要 id。", "materials")
        modes[item["id"]] = _str(item, "mode") or "provided"
        hashes = item.get("reuse", [])
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise _bad("materials[].reuse 应为文件哈希的列表。", item["id"])
        reuse[item["id"]] = tuple(hashes)
    for material_id in files:
        modes.setdefault(material_id, "provided")
    pledge = obj.get("pledge") or {}
    if not isinstance(pledge, dict):
        raise _bad("pledge 应为对象。", "pledge")
    applicant = _person(obj.get("applicant"), "applicant", True)
    assert applicant is not None
    return Application(
        matter=_str(obj, "matter"),  # a bundle's application names no single matter
        applicant=applicant,
        agent=_person(obj.get("agent"), "agent", False),
        phone=_str(obj, "phone") or None,
        location=_str(obj, "location") or None,
        pickup=_str(obj, "pickup") or None,
        materials=tuple(
            MaterialInput(mid, mode, tuple(files.get(mid, ())), reuse.get(mid, ()))
            for mid, mode in modes.items()
        ),
        pledge_text=_str(pledge, "text", where="pledge.") or None,
        pledge_deadline=_day(_str(pledge, "deadline", where="pledge."), "pledge.deadline"),
        note=_str(obj, "note"),
    )


def _from_flat(fields: Mapping[str, str]) -> dict[str, Any]:
    """A plain HTML form's fields as the JSON application."""
    obj: dict[str, Any] = {
        key: fields.get(key, "") for key in ("matter", "phone", "location", "pickup", "note")
    }
    obj["applicant"] = {
        "name": fields.get("applicant_name", ""),
        "id_type": fields.get("applicant_id_type", ""),
        "id_number": fields.get("applicant_id_number", ""),
    }
    if fields.get("agent_name", "").strip():
        obj["agent"] = {
            "name": fields.get("agent_name", ""),
            "id_type": fields.get("agent_id_type", ""),
            "id_number": fields.get("agent_id_number", ""),
        }
    materials: dict[str, dict[str, Any]] = {}
    for key, value in fields.items():
        if key.startswith("material."):
            materials.setdefault(key[len("material.") :], {})["mode"] = value
        elif key.startswith("reuse.") and value.strip():
            entry = materials.setdefault(key[len("reuse.") :], {})
            entry["reuse"] = [h.strip() for h in value.split(",") if h.strip()]
    obj["materials"] = [{"id": mid, **entry} for mid, entry in materials.items()]
    obj["pledge"] = {
        "text": fields.get("pledge_text", ""),
        "deadline": fields.get("pledge_deadline", ""),
    }
    return obj


async def _read_part(part: BodyPartReader, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ServiceError(
                "file_too_large", f"{what} 超过 {limit // (1024 * 1024)} MB。", status=413
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _filename(raw: str) -> str:
    """Browsers send UTF-8 file names as they are; some clients percent-encode them."""
    if _PERCENT.search(raw):
        try:
            return unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return raw
    return raw


async def read_application(request: web.Request, *, form_csrf: bool = False) -> Application:
    """The application of a ``POST`` (JSON, or multipart with files; see docs/api.md).

    ``form_csrf``: for HTML pages outside /api/, check the form's ``csrf_token`` field
    against the session (the API checks the X-CSRF-Token header in the middleware).
    """
    if form_csrf and request.content_type != "multipart/form-data":
        raise ServiceError("unsupported_media_type", "请以 multipart/form-data 提交。", status=415)
    if request.content_type == "application/json":
        return parse_application(await _json(request), {})
    if request.content_type != "multipart/form-data":
        raise ServiceError(
            "unsupported_media_type", "请以 multipart/form-data 或 JSON 提交。", status=415
        )
    fields, files = await read_multipart(request)
    if form_csrf:
        check_form_csrf(request, fields.get("csrf_token"))
    if "application" in fields:
        try:
            obj = json.loads(fields["application"])
        except (ValueError, RecursionError):
            raise _bad("application 字段不是有效的 JSON。", "application") from None
        if not isinstance(obj, dict):
            raise _bad("application 字段应为 JSON 对象。", "application")
    else:
        obj = _from_flat(fields)
    return parse_application(obj, files)


async def read_multipart(
    request: web.Request,
) -> tuple[dict[str, str], dict[str, list[UploadedFile]]]:
    """Text fields and files (``file.<material id>``, empty file inputs skipped)."""
    fields: dict[str, str] = {}
    files: dict[str, list[UploadedFile]] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise _bad("表单格式有误。")
        if part.filename is not None:
            if not part.name.startswith("file."):
                raise _bad(f"文件字段应命名为 file.<材料编号>，而不是 {part.name}。", part.name)
            data = await _read_part(part, MAX_FILE_BYTES, f"文件「{part.filename}」")
            if not data:
                continue  # an empty file input of a plain HTML form
            mime = part.headers.get("Content-Type", "application/octet-stream")
            files.setdefault(part.name[len("file.") :], []).append(
                UploadedFile(_filename(part.filename), mime, data)
            )
        else:
            text = (await _read_part(part, 256 * 1024, part.name)).decode("utf-8", "replace")
            if part.name.startswith("reuse."):  # 只提交一次材料: one hash per field
                fields[part.name] = ",".join(filter(None, (fields.get(part.name), text)))
            else:
                fields[part.name] = text
    return fields, files


async def create_case(request: web.Request) -> web.Response:
    application = await read_application(request)
    receipt = await accept.accept_application(
        request.app[CTX], application, _session(request).clerk
    )
    return reply(receipt, status=201)


async def list_cases(request: web.Request) -> web.Response:
    found = await cases.list_cases(
        request.app[CTX],
        request.query.get("q", ""),
        request.query.get("state") or None,
        limit=_int(request, "limit", 50),
        offset=_int(request, "offset", 0),
    )
    return reply(found)


async def case_detail(request: web.Request) -> web.Response:
    return reply(await cases.case_detail(request.app[CTX], request.match_info["number"]))


async def case_receipt(request: web.Request) -> web.Response:
    detail = await cases.case_detail(request.app[CTX], request.match_info["number"])
    if "receipt" not in detail:
        raise ServiceError("no_receipt", "该办件不是本窗口受理的，没有受理回执。", status=404)
    return reply(detail["receipt"])


async def deliver(request: web.Request) -> web.Response:
    body = await _json(request)
    detail = await cases.deliver(
        request.app[CTX],
        request.match_info["number"],
        collector=_str(body, "collector", required=True),
        method=_str(body, "method", required=True),
        when=_instant(_str(body, "when"), "when"),
        collector_id_number=_str(body, "collector_id_number") or None,
        note=_str(body, "note"),
        clerk=_session(request).clerk,
    )
    return reply(detail)


async def find_waiting(request: web.Request) -> web.Response:
    body = await _json(request)
    found = await window.find_waiting(
        request.app[CTX],
        _str(body, "number", required=True),
        _str(body, "id_number", required=True),
        _session(request).token_hash,
    )
    return reply(found)


async def supplement(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    if request.content_type == "multipart/form-data":
        fields, files = await read_multipart(request)
    else:
        fields, files = {"note": _str(await _json(request), "note")}, {}
    detail = await window.supplement(
        request.app[CTX],
        number,
        tuple(MaterialInput(mid, "provided", tuple(f)) for mid, f in files.items()),
        _session(request).token_hash,
        note=fields.get("note", ""),
        clerk=_session(request).clerk,
    )
    return reply(detail)


async def withdraw(request: web.Request) -> web.Response:
    body = await _json(request)
    detail = await window.withdraw(
        request.app[CTX],
        request.match_info["number"],
        _str(body, "reason"),
        _session(request).clerk,
    )
    return reply(detail)


async def rate(request: web.Request) -> web.Response:
    body = await _json(request)
    score = body.get("score")
    if type(score) is not int:
        raise _bad("score 应为 1 至 5 的整数。", "score")
    detail = await window.rate(
        request.app[CTX],
        request.match_info["number"],
        score,
        _str(body, "comment"),
        _session(request).clerk,
    )
    return reply(detail)


async def decide(request: web.Request) -> web.Response:
    body = await _json(request)
    code = body.get("result_code", 0)
    if type(code) is not int:
        raise _bad("result_code 应为整数。", "result_code")
    detail = await window.decide_on_the_spot(
        request.app[CTX],
        request.match_info["number"],
        result_code=code,
        reason=_str(body, "reason"),
        opinion=_str(body, "opinion"),
        licence_no=_str(body, "licence_no"),
        valid_until=_day(_str(body, "valid_until"), "valid_until"),
        clerk=_session(request).clerk,
    )
    return reply(detail)


async def reusable(request: web.Request) -> web.Response:
    found = await accept.reusable_materials(request.app[CTX], request.query.get("id_number", ""))
    return reply({"materials": found})


async def list_bundles(request: web.Request) -> web.Response:
    return reply({"bundles": bundles.list_bundles(request.app[CTX])})


async def bundle_checklist(request: web.Request) -> web.Response:
    return reply(bundles.bundle_checklist(request.app[CTX], request.match_info["code"]))


async def create_bundle(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    application = await read_application(request)
    detail = await bundles.accept_bundle(
        request.app[CTX], code, replace(application, matter=code), _session(request).clerk
    )
    return reply(detail, status=201)


async def bundle_detail(request: web.Request) -> web.Response:
    return reply(await bundles.bundle_detail(request.app[CTX], request.match_info["number"]))


async def deliver_bundle(request: web.Request) -> web.Response:
    body = await _json(request)
    detail = await bundles.deliver_bundle(
        request.app[CTX],
        request.match_info["number"],
        collector=_str(body, "collector", required=True),
        method=_str(body, "method", required=True),
        when=_instant(_str(body, "when"), "when"),
        clerk=_session(request).clerk,
    )
    return reply(detail)


async def blob(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    digest = request.match_info["hash"]
    if not HASH_RE.match(digest):
        raise not_found("blob", "没有找到该材料文件。")
    row = await ctx.store.blob(digest)
    path = ctx.blobs.path(digest)
    if row is None or not path.is_file():
        raise not_found("blob", "没有找到该材料文件。")
    # The type comes from the file's own bytes, not from what the uploader claimed, so an
    # uploaded "image" that is really HTML is downloaded, never rendered in the window.
    kind = await asyncio.to_thread(ctx.blobs.content_type, digest)
    shown = "attachment" if kind == OPAQUE else "inline"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": kind,
            "Content-Disposition": f"{shown}; filename*=UTF-8''{quote(row.name)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- sync ------------------------------------------------------------------------------------


async def sync_status(request: web.Request) -> web.Response:
    return reply(await status.sync_status(request.app[CTX]))


async def sync_now(request: web.Request) -> web.Response:
    request.app[CTX].wake()
    return reply({"woken": True}, status=202)


async def quarantine(request: web.Request) -> web.Response:
    return reply({"items": await status.quarantine_list(request.app[CTX])})


async def release(request: web.Request) -> web.Response:
    try:
        item_id = int(request.match_info["id"])
    except ValueError:
        raise not_found("quarantine", "没有找到该隔离记录。") from None
    item = await status.release(request.app[CTX], item_id, _session(request).clerk)
    return reply(item)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/login", login)
    router.add_post("/api/logout", logout)
    router.add_get("/api/session", session_info)
    router.add_post("/api/password", change_password)
    router.add_get("/api/clerks", list_clerks)
    router.add_post("/api/clerks", create_clerk)
    router.add_get("/api/station", station_info)
    router.add_get("/api/matters", search_matters)
    router.add_get("/api/matters/{code}", matter_detail)
    router.add_post("/api/cases", create_case)
    router.add_get("/api/cases", list_cases)
    router.add_get("/api/cases/{number}", case_detail)
    router.add_get("/api/cases/{number}/receipt", case_receipt)
    router.add_post("/api/cases/{number}/deliver", deliver)
    router.add_post("/api/supplements/lookup", find_waiting)
    router.add_post("/api/cases/{number}/supplement", supplement)
    router.add_post("/api/cases/{number}/withdraw", withdraw)
    router.add_post("/api/cases/{number}/rate", rate)
    router.add_post("/api/cases/{number}/decide", decide)
    router.add_get("/api/materials/reusable", reusable)
    router.add_get("/api/bundles", list_bundles)
    router.add_get("/api/bundles/{code}/checklist", bundle_checklist)
    router.add_post("/api/bundles/{code}", create_bundle)
    router.add_get("/api/bundles/{number}", bundle_detail)
    router.add_post("/api/bundles/{number}/deliver", deliver_bundle)
    router.add_get("/api/blobs/{hash}", blob)
    router.add_get("/api/sync", sync_status)
    router.add_post("/api/sync/now", sync_now)
    router.add_get("/api/quarantine", quarantine)
    router.add_post("/api/quarantine/{id}/release", release)
