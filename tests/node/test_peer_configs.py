"""Metro peer configs at a station: verified with the peer root keys of the home config."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from node.services.context import ConfigCache, NodeContext
from protocol.config import FederationConfig, SignedConfig, sign_config
from protocol.errors import RemoteProtocolError
from protocol.seal import result_text, seal_result
from tests.protocol.fed import CITY, FS_CITY, FS_METRO, FS_SFJ, fushun_dict, key, shenyang_dict

AT = "2026-11-02T01:00:00.000+00:00"


def signed(obj: dict[str, Any], signer: str) -> SignedConfig:
    return sign_config(FederationConfig.parse(obj), key(f"root {signer}"))


async def test_a_peer_config_is_verified_kept_and_reloaded(ctx: NodeContext) -> None:
    cache = ConfigCache((key(f"root {CITY}").public,))
    with pytest.raises(RemoteProtocolError) as caught:  # no home config: no peers either
        await cache.adopt_peer(ctx.store, signed(fushun_dict(), FS_CITY), AT)
    assert caught.value.reason == "unknown_peer"
    await cache.adopt(ctx.store, signed(shenyang_dict(), CITY), AT)
    assert cache.federation is not None and cache.federation.matter(FS_METRO) is None

    # 抚顺's config re-signed by another root key than the one our config lists for 抚顺.
    forged = signed({**fushun_dict(), "root_keys": shenyang_dict()["root_keys"]}, CITY)
    with pytest.raises(RemoteProtocolError):
        await cache.adopt_peer(ctx.store, forged, AT)
    assert await cache.adopt_peer(ctx.store, signed(fushun_dict(), FS_CITY), AT)
    assert not await cache.adopt_peer(ctx.store, signed(fushun_dict(), FS_CITY), AT)
    assert cache.federation is not None and cache.federation.matter(FS_METRO) is not None

    reloaded = ConfigCache(cache.anchors)
    await reloaded.load(ctx.store)
    assert reloaded.federation is not None and FS_CITY in reloaded.federation.peers


async def test_the_public_verify_page_judges_a_peer_city_result(
    ctx: NodeContext, api: TestClient
) -> None:
    """A result sealed by 抚顺 (2104) at the station's /verify: unknown until the station
    holds 抚顺's root-signed config, then genuine, naming the city."""
    doc = {
        "case": "210102001001-20261123-0009",
        "matter": FS_METRO,
        "matter_name": "抚顺的都市圈事项",
        "applicant": {"name": "王五", "id_masked": "2101**********4321"},
        "result_code": 0,
        "decision": "准予",
        "authority": FS_SFJ,
        "authority_name": f"部门 {FS_SFJ}",
        "issued": "2026-11-24T10:00:00+08:00",
    }
    text = result_text(seal_result(doc, key(f"seal {FS_SFJ}")))
    resp = await api.post("/verify", data={"text": text})
    assert resp.status == 422 and "签发部门不在联邦配置中" in await resp.text()
    assert await ctx.configs.adopt_peer(ctx.store, signed(fushun_dict(), FS_CITY), AT)
    resp = await api.post("/verify", data={"text": text})
    html = await resp.text()
    assert resp.status == 200 and "真实有效" in html
    assert "都市圈伙伴城市" in html and "（2104，" in html
