"""No full ID number or phone number leaks into logs, metrics or error bodies (issue 8).

A scenario on a village station (its app on a test server) and a district hub (a real hub app
on 127.0.0.1): applications with full 18-character ID numbers and 11-digit mobile numbers,
refusals that name them (a bad check character, a login typed with an ID number, events whose
bodies carry them), the workbench reading the case. Then every log record (all levels, via
caplog, rendered by the member's own log formatter, as ``tongban … run`` writes it), every log
file under the data directories, /metrics of both, and every error body collected on the way
are scanned for any full ID number or phone number.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from hub.logs import MaskingFormatter
from hub.services.staff import set_password
from node.logs import KeyValueFormatter
from tests.hub.conftest import RunningHub, StartHub, session, start_hub
from tests.hub.fed import HP_MZJ, PASSWORD, REVIEWER, VILLAGE_A, Chain, sha, submit, wire
from tests.hub.test_review import Workbench
from tests.node.conftest import Initialised, api, clock, ctx, login, station
from tests.node.helpers import resident_id
from tests.node.test_api import case_form

__all__ = ["api", "clock", "ctx", "session", "start_hub", "station"]  # fixtures, re-used

# A number stands on its own: not after a decimal point (a float in /metrics, 0.13123456789…)
# and not inside a word, since a hex event id or blob hash can hold a run of 11 or 18 digits
# ("…a13812345678b…") by chance, which made this test fail now and then.
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z.])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
PHONE = re.compile(r"(?<![0-9A-Za-z.])1[3-9][0-9]{9}(?![0-9A-Za-z])")
IDS = [resident_id(f"2101021985030{n}123") for n in range(3)]
PHONES = ["13912345678", "15098765432", "18600001111"]


HUB_FORMAT, NODE_FORMAT = MaskingFormatter(), KeyValueFormatter()


def written(record: logging.LogRecord) -> str:
    """The line a running member writes for ``record`` (its own formatter; a shared library's
    record must come out clean through both). DEBUG included: nothing relies on the level."""
    if record.name.startswith(("hub", "tongban.hub")):
        return HUB_FORMAT.format(record)
    if record.name.startswith("node"):
        return NODE_FORMAT.format(record)
    return HUB_FORMAT.format(record) + "\n" + NODE_FORMAT.format(record)


def leaks(text: str) -> list[str]:
    return ID_NUMBER.findall(text) + PHONE.findall(text)


def test_the_patterns_find_what_they_look_for() -> None:
    sample = f"id={IDS[0]} phone={PHONES[0]} masked=2101**********1234 at 2026-11-23"
    assert leaks(sample) == [IDS[0], PHONES[0]]
    assert leaks("tongban_push_seconds_sum 0.13123456789012") == []
    assert leaks("event=9f3a13812345678bc2 blob=e210102198503011234d") == []
    assert leaks(f'"applicant":"{IDS[1]}","phone":"{PHONES[1]}"') == [IDS[1], PHONES[1]]


def scan_log_files(root: Path) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*.log*"):
        if hits := leaks(path.read_text(encoding="utf-8", errors="replace")):
            found[f"file {path.relative_to(root)}"] = hits
    return found


async def _station_side(api: TestClient, station: Initialised, bodies: list[str]) -> None:
    csrf = await login(api, station.password)
    headers = {"X-CSRF-Token": csrf}
    for id_number, phone in zip(IDS, PHONES, strict=True):
        form = case_form(applicant_id_number=id_number, phone=phone)
        resp = await api.post("/api/cases", data=form, headers=headers)
        assert resp.status == 201, await resp.text()
    # Refusals that are about the very numbers: their bodies must not echo them.
    bad_id = IDS[0][:-1] + ("0" if IDS[0][-1] != "0" else "1")
    statuses = []
    for form in (
        case_form(applicant_id_number=bad_id, phone=PHONES[0]),
        case_form(applicant_id_number=IDS[1][:-2], phone=PHONES[1]),
        case_form("NO-SUCH-MATTER", applicant_id_number=IDS[2], phone=PHONES[2]),
    ):
        resp = await api.post("/api/cases", data=form, headers=headers)
        statuses.append(resp.status)
        bodies.append(await resp.text())
    assert statuses == [422, 422, 422], statuses
    resp = await api.get("/api/cases", params={"q": IDS[1]})
    assert resp.status == 200
    resp = await api.get(f"/api/cases/{IDS[0]}")
    bodies.append(await resp.text())
    # A login typed with an ID number or a phone number as the user name.
    for name in (IDS[2], PHONES[2]):
        resp = await api.post("/api/login", json={"username": name, "password": "x"})
        bodies.append(await resp.text())
    bodies.append(await (await api.get("/metrics")).text())


async def _hub_side(hub: RunningHub, session: aiohttp.ClientSession, bodies: list[str]) -> None:
    await set_password(hub.hub, REVIEWER, PASSWORD)
    chain = Chain(VILLAGE_A)
    event = submit(chain, to=HP_MZJ)
    await hub.client(VILLAGE_A, session).push(wire(event))
    # An event whose body carries full numbers, refused for another reason (a seq gap).
    gap = chain.make(5, chain.head, body={"id_number": IDS[0], "phone": PHONES[0]})
    url = hub.url + "v1/push"
    try:
        await hub.client(VILLAGE_A, session).push(wire(gap))
    except Exception as exc:
        bodies.append(str(exc))
    del url
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        bench = Workbench(hub, browser)
        for name in (IDS[1], PHONES[1]):
            _, answer = await bench.login(staff=name, password="x")
            bodies.append(str(answer))
        status, _ = await bench.login()
        assert status == 200
        assert event.case is not None
        status, answer = await bench.call("GET", f"/api/cases/{event.case}")
        assert status == 200
        status, answer = await bench.call("GET", f"/api/cases/{IDS[2]}")
        bodies.append(str(answer))
        status, answer = await bench.call(
            "POST", f"/api/cases/{event.case}/accept", {"opinion": f"电话 {PHONES[2]}"}
        )
        bodies.append(str(answer))
    async with session.get(hub.url + "metrics") as resp:
        bodies.append(await resp.text())
    async with session.get(hub.url + "v1/blobs/" + sha(IDS[0])) as resp:
        bodies.append(await resp.text())


@pytest.mark.usefixtures("ctx")
async def test_no_full_id_or_phone_number_in_logs_metrics_or_error_bodies(
    api: TestClient,
    station: Initialised,
    start_hub: StartHub,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    await _station_side(api, station, bodies)
    hub = await start_hub()
    await _hub_side(hub, session, bodies)

    found: dict[str, list[str]] = {}
    for record in caplog.records:
        if record.name == "aiohttp.access":
            continue  # test servers only: `tongban … run` starts its runners with access_log=None
        if hits := leaks(written(record)):
            found[f"log {record.name}:{record.lineno}"] = hits
    found.update(scan_log_files(tmp_path))
    for n, body in enumerate(bodies):
        if hits := leaks(body):
            found[f"body {n}: {body[:120]}"] = hits
    assert len(bodies) >= 12
    assert not found, found
