"""Metro peer configs at a station: verified with the peer root keys of the home config."""

from __future__ import annotations

from typing import Any

import pytest

from node.services.context import ConfigCache, NodeContext
from protocol.config import FederationConfig, SignedConfig, sign_config
from protocol.errors import RemoteProtocolError
from tests.protocol.fed import CITY, FS_CITY, FS_METRO, fushun_dict, key, shenyang_dict

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
