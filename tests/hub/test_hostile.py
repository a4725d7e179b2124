"""Hostile input at a district hub, one table: each case's expected refusal and nothing changed.

Every row sends one hostile request to a hub that already holds one window's case (so chains,
feeds, blobs and staff exist) and asserts the HTTP status and the error reason the hub gives,
then that no table changed but the ones that record a refusal (quarantine, equivocation
evidence, alerts). Single-purpose tests elsewhere (test_push, test_tus, test_config,
test_review, test_pages) go deeper into each; this table is the inventory (issue 8).
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from hub.services.staff import MAX_FAILURES, set_password
from protocol.config import FederationConfig, sign_config
from protocol.encoding import canonical
from protocol.http import PeerError, sign_request
from protocol.http.tus import checksum_header, encode_metadata
from protocol.keys import KeyPair
from tests.hub.clients import Tus
from tests.hub.conftest import RunningHub, StartHub, table_counts
from tests.hub.fed import (
    CLERK,
    DISTRICT,
    HP_MZJ,
    OTHER_VILLAGE,
    PASSWORD,
    REVIEWER,
    STRANGER,
    VILLAGE_A,
    VILLAGE_B,
    Chain,
    Fed,
    key,
    member,
    sha,
    submit,
    wire,
)
from tests.hub.test_pages import Pages, pushed_case, token_of
from tests.hub.test_review import Workbench

EXPIRED = "210102001003"  # illustrative: a window whose only key ran out in 2025
REVOKED = "210102001004"  # illustrative: a window whose key was revoked (lost PC)
EVIDENCE = ("quarantine", "equivocations", "alerts")  # tables that record a refusal
SCAN = bytes(range(256)) * 40


def _fed() -> Fed:
    expired = member(EXPIRED, DISTRICT, "station")
    expired["keys"][0]["valid_until"] = "2025-06-01T00:00:00+08:00"
    return Fed(
        extra_members=[expired, member(REVOKED, DISTRICT, "station")],
        revocations=[
            {
                "member": REVOKED,
                "kid": None,
                "revoked_at": "2025-12-01T00:00:00+08:00",
                "reason": "丢失",
            }
        ],
    )


@dataclass
class Ctx:
    hub: RunningHub
    session: aiohttp.ClientSession
    browser: aiohttp.ClientSession
    chain: Chain  # VILLAGE_A, one case.submitted in custody
    case: str
    blob: str  # held, uploaded by VILLAGE_A, named in no event

    async def signed(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        member: str = VILLAGE_A,
        signer: KeyPair | None = None,
        headers: dict[str, str] | None = None,
        created: int | None = None,
        nonce: str | None = None,
        send: bytes | None = None,
        tamper: Callable[[dict[str, str]], None] | None = None,
    ) -> tuple[int, str]:
        """A signed request; the status and the error reason the hub answers."""
        url = self.hub.url.rstrip("/") + path
        sent = dict(headers or {})
        sent.update(
            sign_request(
                method,
                url,
                sent,
                body,
                signer or key(member),
                created=int(time.time()) if created is None else created,
                nonce=nonce or f"hostile-{time.monotonic_ns()}",
            )
        )
        if tamper is not None:
            tamper(sent)
        data = body if send is None else send
        async with self.session.request(method, url, headers=sent, data=data or None) as resp:
            return resp.status, reason_of(await resp.read())

    async def push_raw(self, raw: bytes, **kw: Any) -> tuple[int, str]:
        body = gzip.compress(raw, mtime=0)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return await self.signed("POST", "/v1/push", body, headers=headers, **kw)

    async def push(self, *events: object, **kw: Any) -> tuple[int, str]:
        listed = [e if isinstance(e, dict) else e.to_dict() for e in events]  # type: ignore[attr-defined]
        return await self.push_raw(canonical({"events": listed}), **kw)

    async def bench(self, staff: str = REVIEWER) -> Workbench:
        bench = Workbench(self.hub, self.browser)
        await bench.login(staff)
        return bench


async def api(call: Awaitable[tuple[int, Any]]) -> tuple[int, str]:
    status, answer = await call
    return status, str(answer.get("error", "")) if isinstance(answer, dict) else ""


def reason_of(raw: bytes) -> str:
    try:
        answer = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:200]
    return str(answer.get("error", "")) if isinstance(answer, dict) else ""


async def _config(ctx: Ctx, body: dict[str, Any]) -> tuple[int, str]:
    async with ctx.session.post(ctx.hub.url + "v1/config", json=body) as resp:
        return resp.status, reason_of(await resp.read())


# -- the cases ------------------------------------------------------------------------------
Run = Callable[[Ctx], Awaitable[tuple[int, str]]]
CASES: dict[str, tuple[Run, int, str]] = {}


def case(name: str, status: int, reason: str) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        CASES[name] = (run, status, reason)
        return run

    return register


@case("forged request signature", 401, "bad_request_signature")
async def _forged_request(ctx: Ctx) -> tuple[int, str]:
    def flip(h: dict[str, str]) -> None:
        label, _, value = h["Signature"].partition("=:")
        raw = bytearray(base64.b64decode(value.rstrip(":")))
        raw[0] ^= 1
        h["Signature"] = f"{label}=:{base64.b64encode(bytes(raw)).decode()}:"

    return await ctx.push(ctx.chain.make(2, ctx.chain.head), tamper=flip)


@case("request without a signature", 401, "unsigned")
async def _unsigned(ctx: Ctx) -> tuple[int, str]:
    async with ctx.session.post(ctx.hub.url + "v1/push", json={"events": []}) as resp:
        return resp.status, reason_of(await resp.read())


@case("tampered request body", 401, "digest_mismatch")
async def _tampered_body(ctx: Ctx) -> tuple[int, str]:
    good = canonical({"events": wire(ctx.chain.make(2, ctx.chain.head))})
    bad = canonical({"events": wire(ctx.chain.make(2, ctx.chain.head, body={"x": 1}))})
    headers = {"Content-Type": "application/json"}
    return await ctx.signed("POST", "/v1/push", good, headers=headers, send=bad)


@case("wrong key (not in the config)", 401, "unknown_key")
async def _wrong_key(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(ctx.chain.make(2, ctx.chain.head), signer=KeyPair.from_seed(b"\1" * 32))


@case("revoked key", 401, "unknown_key")
async def _revoked(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(Chain(REVOKED).next(), member=REVOKED)


@case("expired key", 401, "unknown_key")
async def _expired(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(Chain(EXPIRED).next(), member=EXPIRED)


@case("replayed request nonce", 401, "replayed_nonce")
async def _replayed(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(ctx.chain.make(2, ctx.chain.head), nonce="first-request-nonce")


@case("stale created", 401, "stale_request")
async def _stale(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(ctx.chain.make(2, ctx.chain.head), created=int(time.time()) - 3600)


@case("created in the future", 401, "stale_request")
async def _future(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(ctx.chain.make(2, ctx.chain.head), created=int(time.time()) + 3600)


@case("forged event signature", 422, "bad_signature")
async def _forged_event(ctx: Ctx) -> tuple[int, str]:
    event = ctx.chain.make(2, ctx.chain.head, body={"fee_fen": 100}).to_dict()
    event["body"] = {"fee_fen": 1}
    return await ctx.push(event)


@case("event signed by another member's key", 422, "unknown_key")
async def _event_wrong_signer(ctx: Ctx) -> tuple[int, str]:
    other = Chain(VILLAGE_A, signer=key(VILLAGE_B))
    return await ctx.push(other.make(2, ctx.chain.head))


@case("event for another author", 422, "not_your_event")
async def _another_author(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(Chain(VILLAGE_B).next())


@case("event of an unknown author", 422, "unknown_author")
async def _unknown_author(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(Chain(STRANGER).next())


@case("pusher is not a child of this hub", 403, "not_a_child")
async def _not_a_child(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(Chain(OTHER_VILLAGE).next(), member=OTHER_VILLAGE)


@case("seq gap", 422, "gap")
async def _gap(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(ctx.chain.make(3, ctx.chain.head))


@case("wrong prev", 422, "wrong_prev")
async def _wrong_prev(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(ctx.chain.make(2, "ab" * 32))


@case("equivocation (a second seq 1)", 422, "equivocation")
async def _equivocation(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push(ctx.chain.make(1, None, body={"另一个": "版本"}))


@case("oversize batch (too many events)", 400, "batch_too_large")
async def _batch_count(ctx: Ctx) -> tuple[int, str]:
    chain = Chain(VILLAGE_A)
    chain.seq, chain.head = ctx.chain.seq, ctx.chain.head
    return await ctx.push(*[chain.next() for _ in range(201)])


@case("oversize event body", 422, "body_too_large")
async def _big_event(ctx: Ctx) -> tuple[int, str]:
    event = ctx.chain.make(2, ctx.chain.head).to_dict()
    event["body"] = {"x": "字" * 30_000}
    return await ctx.push(event)


@case("oversize request body", 413, "body_too_large")
async def _big_request(ctx: Ctx) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    return await ctx.signed("POST", "/v1/push", b" " * (3 * 1024 * 1024), headers=headers)


@case("deep nesting", 400, "too_deep")
async def _deep(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push_raw(b'{"events": [' + b"[" * 100 + b"]" * 100 + b"]}")


@case("invalid UTF-8", 400, "bad_utf8")
async def _utf8(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push_raw(b'{"events": ["\xff\xfe"]}')


@case("duplicate JSON keys", 400, "duplicate_key")
async def _dup(ctx: Ctx) -> tuple[int, str]:
    return await ctx.push_raw(b'{"events": [], "events": []}')


@case("unknown event type", 422, "bad_type")
async def _unknown_type(ctx: Ctx) -> tuple[int, str]:
    event = ctx.chain.make(2, ctx.chain.head).to_dict()
    event["type"] = "Case.Explode!"
    return await ctx.push(event)


@case("decision by another department (reviewer API)", 403, "wrong_department")
async def _other_department(ctx: Ctx) -> tuple[int, str]:
    bench = await ctx.bench(CLERK)
    return await api(bench.call("POST", f"/api/cases/{ctx.case}/accept", {"opinion": "越权"}))


@case("reviewer API without a CSRF token", 403, "bad_csrf")
async def _no_csrf_api(ctx: Ctx) -> tuple[int, str]:
    bench = await ctx.bench()
    return await api(bench.call("POST", f"/api/cases/{ctx.case}/accept", {}, csrf=False))


@case("reviewer API with a forged CSRF token", 403, "bad_csrf")
async def _forged_csrf_api(ctx: Ctx) -> tuple[int, str]:
    bench = await ctx.bench()
    bench.csrf = "forged"
    return await api(bench.call("POST", f"/api/cases/{ctx.case}/accept", {}))


@case("reviewer API: deeply nested JSON (was a 500)", 400, "bad_request")
async def _api_deep(ctx: Ctx) -> tuple[int, str]:
    await ctx.bench()
    return await _api_raw(ctx, b'{"opinion": ' + b"[" * 5000 + b"]" * 5000 + b"}")


@case("reviewer API: invalid UTF-8", 400, "bad_request")
async def _api_utf8(ctx: Ctx) -> tuple[int, str]:
    await ctx.bench()
    return await _api_raw(ctx, b'{"opinion": "\xff\xfe"}')


async def _api_raw(ctx: Ctx, body: bytes) -> tuple[int, str]:
    bench = Workbench(ctx.hub, ctx.browser)
    _, me = await bench.call("GET", "/api/me")
    headers = {"Content-Type": "application/json", "X-CSRF-Token": str(me.get("csrf", ""))}
    url = f"{ctx.hub.url}api/cases/{ctx.case}/accept"
    async with ctx.browser.post(url, data=body, headers=headers) as resp:
        return resp.status, reason_of(await resp.read())


@case("reviewer API without a session", 401, "not_logged_in")
async def _no_session(ctx: Ctx) -> tuple[int, str]:
    bench = Workbench(ctx.hub, ctx.browser)
    return await api(bench.call("POST", f"/api/cases/{ctx.case}/accept", {}))


@case("hub form without a CSRF token", 403, "页面已过期")
async def _no_csrf_form(ctx: Ctx) -> tuple[int, str]:
    pages = Pages(ctx.hub, ctx.browser)
    await pages.login()
    status, html, _ = await pages.post(f"/cases/{ctx.case}/accept", {"opinion": "同意"})
    return status, "页面已过期" if "页面已过期" in html else html[:200]


@case("login brute force (API)", 429, "locked_out")
async def _brute_api(ctx: Ctx) -> tuple[int, str]:
    bench = Workbench(ctx.hub, ctx.browser)
    for _ in range(MAX_FAILURES):
        await bench.login(password="猜一猜")
    return await api(bench.login())


@case("login brute force (page)", 429, "locked_out")
async def _brute_page(ctx: Ctx) -> tuple[int, str]:
    pages = Pages(ctx.hub, ctx.browser)
    for _ in range(MAX_FAILURES):
        await pages.login(password="猜一猜")
    _, html, _ = await pages.get("/login")
    status, html, _ = await pages.post(
        "/login", {"staff": REVIEWER, "password": PASSWORD, "csrf_token": token_of(html)}
    )
    return status, "locked_out" if status == 429 else html[:200]


@case("feed with a path in the cursor", 400, "bad_cursor")
async def _bad_cursor(ctx: Ctx) -> tuple[int, str]:
    try:
        await ctx.hub.client(VILLAGE_A, ctx.session).feed("../1", 0)
    except PeerError as exc:
        return exc.status, exc.reason
    return 200, ""


@case("feed of another hub's member", 403, "not_a_child")
async def _feed_stranger(ctx: Ctx) -> tuple[int, str]:
    try:
        await ctx.hub.client(OTHER_VILLAGE, ctx.session).feed(None, 0)
    except PeerError as exc:
        return exc.status, exc.reason
    return 200, ""


@case("history of another member (station restore)", 403, "not_your_history")
async def _others_history(ctx: Ctx) -> tuple[int, str]:
    return await ctx.signed("GET", f"/v1/history/{VILLAGE_A}", member=VILLAGE_B)


@case("history with a path in the cursor", 400, "bad_cursor")
async def _history_cursor(ctx: Ctx) -> tuple[int, str]:
    return await ctx.signed("GET", f"/v1/history/{VILLAGE_A}?after=../../1")


@case("history read with a retired key", 401, "unknown_key")
async def _history_old_key(ctx: Ctx) -> tuple[int, str]:
    return await ctx.signed("GET", f"/v1/history/{EXPIRED}", member=EXPIRED)


@case("blob of another member", 403, "forbidden")
async def _others_blob(ctx: Ctx) -> tuple[int, str]:
    return await ctx.signed("GET", f"/v1/blobs/{ctx.blob}", member=VILLAGE_B)


@case("path traversal in a blob id", 400, "bad_blob_id")
async def _traversal_blob(ctx: Ctx) -> tuple[int, str]:
    return await ctx.signed("GET", "/v1/blobs/..%2F..%2Fhub.json")


@case("path traversal in an upload id", 400, "bad_upload_id")
async def _traversal_upload(ctx: Ctx) -> tuple[int, str]:
    headers = {
        "Tus-Resumable": "1.0.0",
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": "0",
    }
    return await ctx.signed(
        "PATCH", "/v1/blobs/uploads/..%2F..%2Fmember.key", b"x", headers=headers
    )


@case("path traversal in the blob hash metadata", 400, "bad_blob_id")
async def _traversal_meta(ctx: Ctx) -> tuple[int, str]:
    tus = Tus(ctx.hub, ctx.session, VILLAGE_A)
    got, _, body = await tus.request(
        "POST",
        "/v1/blobs",
        {"Upload-Length": "10", "Upload-Metadata": encode_metadata({"sha256": "../../etc"})},
    )
    return got, reason_of(body)


async def _tus(ctx: Ctx, blob: str, length: int) -> tuple[Tus, str]:
    tus = Tus(ctx.hub, ctx.session, VILLAGE_A)
    status, headers = await tus.create(blob, length)
    assert status == 201, status
    return tus, headers["Location"]


@case("blob that does not hash to its name", 400, "hash_mismatch")
async def _hash_mismatch(ctx: Ctx) -> tuple[int, str]:
    tus, location = await _tus(ctx, sha(b"something else"), len(SCAN))
    status, _, body = await tus.patch(location, 0, SCAN)
    return status, reason_of(body)


@case("tus PATCH at the wrong offset", 409, "offset_mismatch")
async def _bad_offset(ctx: Ctx) -> tuple[int, str]:
    tus, location = await _tus(ctx, sha(SCAN[::-1]), len(SCAN))
    status, _, body = await tus.patch(location, 7, SCAN[::-1][7:100])
    return status, reason_of(body)


@case("tus PATCH past the declared length", 400, "exceeds_length")
async def _past_length(ctx: Ctx) -> tuple[int, str]:
    tus, location = await _tus(ctx, sha(b"short"), 5)
    status, _, body = await tus.patch(location, 0, b"short and then some")
    return status, reason_of(body)


@case("tus chunk with a bad checksum", 460, "checksum_mismatch")
async def _bad_checksum(ctx: Ctx) -> tuple[int, str]:
    tus, location = await _tus(ctx, sha(SCAN[1:]), len(SCAN) - 1)
    bad = checksum_header(b"not this chunk")
    status, _, body = await tus.patch(location, 0, SCAN[1:], checksum=bad)
    return status, reason_of(body)


@case("tus negative upload length", 400, "bad_upload_length")
async def _negative_length(ctx: Ctx) -> tuple[int, str]:
    got, _, body = await Tus(ctx.hub, ctx.session, VILLAGE_A).request(
        "POST",
        "/v1/blobs",
        {"Upload-Length": "-1", "Upload-Metadata": encode_metadata({"sha256": "a" * 64})},
    )
    return got, reason_of(body)


@case("oversize blob", 413, "blob_too_large")
async def _big_blob(ctx: Ctx) -> tuple[int, str]:
    got, _, body = await Tus(ctx.hub, ctx.session, VILLAGE_A).request(
        "POST",
        "/v1/blobs",
        {
            "Upload-Length": str(51 * 1024 * 1024),
            "Upload-Metadata": encode_metadata({"sha256": "a" * 64}),
        },
    )
    return got, reason_of(body)


@case("config with a lower serial", 400, "stale_serial")
async def _lower_serial(ctx: Ctx) -> tuple[int, str]:
    await _config(ctx, Fed(serial=5, issued="2026-03-01T00:00:00+08:00").signed_dict())
    return await _config(ctx, Fed(serial=4, issued="2026-03-01T00:00:00+08:00").signed_dict())


@case("config with a non-root signature", 400, "bad_config_signature")
async def _non_root(ctx: Ctx) -> tuple[int, str]:
    impostor = KeyPair.from_seed(b"\x07" * 32)
    config = Fed(serial=9).config_dict()
    config["root_keys"].append(
        {"public": impostor.public.to_text(), "valid_from": config["issued"]}
    )
    return await _config(ctx, sign_config(FederationConfig.parse(config), impostor).to_dict())


@case("config with the same serial and other content", 400, "serial_conflict")
async def _serial_conflict(ctx: Ctx) -> tuple[int, str]:
    return await _config(ctx, Fed(expires="2036-01-01T00:00:00+08:00").signed_dict())


# -- the table ------------------------------------------------------------------------------

# What a row's own preparation changes before its probe (a login, a created upload, a config).
PREPARED = {
    "config with a lower serial": {"configs"},
    "tus PATCH at the wrong offset": {"uploads"},
    "tus PATCH past the declared length": {"uploads"},
    "tus chunk with a bad checksum": {"uploads"},
}
LOGIN = {"sessions"}


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.fixture
async def ctx(
    start_hub: StartHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> Ctx:
    hub = await start_hub(fed=_fed())
    await set_password(hub.hub, REVIEWER, PASSWORD)
    await set_password(hub.hub, CLERK, PASSWORD)
    chain = Chain(VILLAGE_A)
    first = submit(chain, to=HP_MZJ)
    client = hub.client(VILLAGE_A, session, nonce_factory=lambda: "first-request-nonce")
    await client.push(wire(first))
    tus = Tus(hub, session, VILLAGE_A)
    blob = sha(SCAN)
    _, headers = await tus.create(blob, len(SCAN))
    await tus.patch(headers["Location"], 0, SCAN)
    assert first.case is not None
    return Ctx(hub, session, browser, chain, first.case, blob)


def test_the_table_has_at_least_thirty_distinct_cases() -> None:
    assert len(CASES) >= 30
    assert len({run for run, _, _ in CASES.values()}) == len(CASES)


@pytest.mark.parametrize("name", list(CASES))
async def test_hostile_request_is_refused_and_changes_nothing(ctx: Ctx, name: str) -> None:
    run, status, reason = CASES[name]
    before = await table_counts(ctx.hub.hub)
    head = await ctx.hub.hub.store.chain_head(VILLAGE_A)
    assert await run(ctx) == (status, reason)
    after = await table_counts(ctx.hub.hub)
    changed = {t for t in after if after[t] != before[t]} - set(EVIDENCE)
    changed -= PREPARED.get(name, set()) | LOGIN
    assert not changed, {t: (before[t], after[t]) for t in changed}
    assert await ctx.hub.hub.store.chain_head(VILLAGE_A) == head


SCRIPT = "<script>alert(1)</script>"
SQL = "'; DROP TABLE events; --"


async def test_markup_and_sql_in_text_fields_are_escaped_and_inert(ctx: Ctx) -> None:
    """An applicant name and a reviewer's opinion carrying HTML/JS and SQL: every hub page
    shows them escaped, and every table is still there with its rows."""
    number = await pushed_case(ctx.hub, ctx.session, name=SCRIPT + SQL, chain=ctx.chain)
    bench = await ctx.bench()
    status, answer = await bench.call(
        "POST", f"/api/cases/{number}/accept", {"opinion": SCRIPT + SQL}
    )
    assert status == 200, answer
    before = await table_counts(ctx.hub.hub)
    assert before["events"] >= 3 and before["cases"] == 2
    pages = Pages(ctx.hub, ctx.browser)  # the same browser session as the workbench
    for path in ("/", f"/cases/{number}", "/status"):
        status, html, _ = await pages.get(path)
        assert status == 200, path
        assert "<script>alert(1)" not in html, path
    _, html, _ = await pages.get(f"/cases/{number}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#39;; DROP TABLE events; --" in html or "&#x27;; DROP TABLE events; --" in html
    _, answer = await bench.call("GET", f"/api/cases/{number}")
    assert SCRIPT + SQL in json.dumps(answer, ensure_ascii=False)  # JSON keeps it as data
    assert await table_counts(ctx.hub.hub) == before
