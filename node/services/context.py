"""What every service needs: the station, its key, the store, the blobs, the clock, the
federation config in force, and a way to wake the sync engine."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from protocol.case import CHINA_TIME
from protocol.config import (
    Federation,
    FederationConfig,
    SignedConfig,
    accept_config,
    parse_signed,
)
from protocol.encoding import loads_strict
from protocol.errors import ProtocolError, RemoteProtocolError
from protocol.http.blobs import BlobStore
from protocol.keys import KeyPair, PublicKey

from ..station import Station
from ..storage import ConfigRow, Store
from .errors import ServiceError

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ConfigCache:
    """The signed federation config in force, kept in memory and in the store.

    The first config must be signed by a trust anchor (the root keys in ``station.json``);
    every later one by a root key of the config held (:func:`protocol.config.accept_config`).
    """

    def __init__(self, anchors: tuple[PublicKey, ...]) -> None:
        self.anchors = anchors
        self.home: SignedConfig | None = None
        self.peers: dict[str, SignedConfig] = {}
        self.federation: Federation | None = None

    async def load(self, store: Store) -> None:
        """Read the stored configs (they were verified when adopted)."""
        for row in await store.configs():
            signed = parse_signed(loads_strict(row.signed))
            if row.home:
                self.home = signed
            else:
                self.peers[row.city] = signed
        self._rebuild()

    def _rebuild(self) -> None:
        """The view of the home config plus every peer config it still lists and trusts."""
        home = self.home
        if home is None:
            self.federation = None
            return
        peers: dict[str, FederationConfig] = {}
        for city, signed in self.peers.items():
            listed = home.config.peers.get(city)
            if listed is None:
                continue
            try:
                signed.verify(g.key for g in listed.root_keys)
            except ProtocolError:
                continue  # a peer whose root key changed waits for its next config
            peers[city] = signed.config
        self.federation = Federation(home.config, peers)

    async def adopt_peer(self, store: Store, offered: SignedConfig, at: str) -> bool:
        """Take a metro peer city's config, verified with the root keys our config lists."""
        home = self.home
        city = offered.config.federation
        listed = None if home is None else home.config.peers.get(city)
        if listed is None:
            raise RemoteProtocolError("unknown_peer", f"{city} is not a metro peer")
        current = self.peers.get(city)
        kept = accept_config(current, offered, [g.key for g in listed.root_keys])
        if current is not None and kept.signed_bytes == current.signed_bytes:
            return False
        signed = json.dumps(kept.to_dict(), ensure_ascii=False, separators=(",", ":"))
        await store.save_config(ConfigRow(city, False, kept.serial, signed, at))
        self.peers[city] = kept
        self._rebuild()
        return True

    async def adopt(self, store: Store, offered: SignedConfig, at: str) -> bool:
        """Take ``offered`` if the trust rules allow; True when it replaced the config.

        Raises :class:`~protocol.errors.RemoteProtocolError` (``bad_config_signature``,
        ``stale_serial``, ``serial_conflict``, ``wrong_federation``) otherwise.
        """
        kept = accept_config(self.home, offered, self.anchors)
        if self.home is not None and kept.signed_bytes == self.home.signed_bytes:
            return False
        signed = json.dumps(kept.to_dict(), ensure_ascii=False, separators=(",", ":"))
        city = kept.config.federation
        await store.save_config(ConfigRow(city, True, kept.serial, signed, at))
        self.home = kept
        self._rebuild()
        return True

    def require(self) -> Federation:
        """The federation view, or a clear refusal when no config has arrived yet."""
        if self.federation is None:
            raise ServiceError(
                "no_config",
                "本站尚未取得联邦配置（事项目录），暂不能办理。请等待与上级同步，"
                "或请运维人员提供已签名的配置文件。",
                status=409,
            )
        return self.federation


class SyncProbe(Protocol):
    """What the sync engine tells the status service about itself."""

    def runtime(self) -> EngineRuntime: ...


@dataclass(frozen=True)
class EngineRuntime:
    """The sync engine's in-memory view: is the hub answering, and when it tries next."""

    running: bool
    online: bool | None  # None: no attempt yet since start
    failures: int
    next_attempt_in: float | None
    last_error: str | None
    clock_offset: int = 0  # seconds to add to this PC's clock to get the hub's


@dataclass
class NodeContext:
    """Everything a service call needs; built once per process (or per test)."""

    station: Station
    key: KeyPair
    store: Store
    blobs: BlobStore
    configs: ConfigCache
    clock: Clock = utc_now
    wake: Callable[[], None] = field(default=lambda: None)
    probe: SyncProbe | None = None
    #: Fetch a case waiting for 补正/补办 from the parent hub (case number, applicant's ID
    #: hash) and store its events; set by the sync engine. None: no hub to ask.
    fetch_case: Callable[[str, str], Awaitable[int]] | None = None

    def now(self) -> datetime:
        """The current instant in China time (what events and receipts show)."""
        return self.clock().astimezone(CHINA_TIME)

    def stamp(self) -> str:
        """The current instant as UTC ISO text (what the station records)."""
        return self.clock().astimezone(UTC).isoformat(timespec="milliseconds")
