"""GET/POST /v1/config: serving the signed config, 304 when current, adoption by the trust rules."""

from __future__ import annotations

import aiohttp
import pytest

from protocol.config import FederationConfig, parse_signed, sign_config
from protocol.http import PeerError
from protocol.keys import KeyPair
from tests.hub.conftest import RunningHub, StartHub
from tests.hub.fed import CITY, VILLAGE_A, Chain, Fed, key, wire


@pytest.fixture
async def district(start_hub: StartHub) -> RunningHub:
    return await start_hub()


async def post(hub: RunningHub, session: aiohttp.ClientSession, body: object) -> tuple[int, dict]:
    async with session.post(hub.url + "v1/config", json=body) as resp:
        return resp.status, await resp.json()


async def test_get_needs_no_signature_and_answers_304_when_current(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    async with session.get(district.url + "v1/config") as resp:
        assert resp.status == 200
        signed = parse_signed(await resp.json())
    signed.verify([key(f"root {CITY}").public])
    assert signed.serial == 1
    async with session.get(district.url + "v1/config?have=1") as resp:
        assert resp.status == 304
    assert await district.client(VILLAGE_A, session).config(have=1) is None
    async with session.get(district.url + "v1/config?have=x") as resp:
        assert (resp.status, (await resp.json())["error"]) == (400, "bad_query")


async def test_post_adopts_a_newer_config(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    newer = Fed(serial=2, issued="2026-02-01T00:00:00+08:00").signed_dict()
    assert await post(district, session, newer) == (200, {"serial": 2, "adopted": True})
    assert await post(district, session, newer) == (200, {"serial": 2, "adopted": False})
    answer = await district.client(VILLAGE_A, session).config(have=1)
    assert answer is not None and answer["config"]["serial"] == 2


@pytest.mark.parametrize(
    ("fed", "signer", "reason"),
    [
        (
            Fed(serial=1, issued="2026-01-01T00:00:00+08:00", expires="2036-01-01T00:00:00+08:00"),
            None,
            "serial_conflict",
        ),
        (Fed(serial=3, issued="2025-06-01T00:00:00+08:00"), None, "stale_serial"),
        (Fed(serial=3), "not the root", "bad_config_signature"),
    ],
)
async def test_post_refuses_what_the_trust_rules_refuse(
    district: RunningHub,
    session: aiohttp.ClientSession,
    fed: Fed,
    signer: str | None,
    reason: str,
) -> None:
    if signer is None:
        body = fed.signed_dict()
    else:
        impostor = KeyPair.from_seed(b"\x07" * 32)
        config = fed.config_dict()
        config["root_keys"].append(
            {"public": impostor.public.to_text(), "valid_from": config["issued"]}
        )
        body = sign_config(FederationConfig.parse(config), impostor).to_dict()
    status, answer = await post(district, session, body)
    assert (status, answer["error"]) == (400, reason)
    async with session.get(district.url + "v1/config?have=1") as resp:
        assert resp.status == 304  # still serial 1


async def test_stale_serial_is_refused(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    await post(district, session, Fed(serial=5, issued="2026-03-01T00:00:00+08:00").signed_dict())
    status, answer = await post(
        district, session, Fed(serial=4, issued="2026-03-01T00:00:00+08:00").signed_dict()
    )
    assert (status, answer["error"]) == (400, "stale_serial")


async def test_a_revocation_takes_effect_at_once(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    client = district.client(VILLAGE_A, session)
    chain = Chain(VILLAGE_A)
    await client.push(wire(chain.next()))
    revoked = Fed(
        serial=2,
        issued="2026-02-01T00:00:00+08:00",
        revocations=[
            {
                "member": VILLAGE_A,
                "kid": None,
                "revoked_at": "2026-02-01T00:00:00+08:00",
                "reason": "丢失",
            }
        ],
    )
    await post(district, session, revoked.signed_dict())
    with pytest.raises(PeerError) as caught:
        await client.push(wire(chain.next()))
    assert (caught.value.status, caught.value.reason) == (401, "unknown_key")
