"""The hub's view of the federation: the newest adopted config of its city and of metro peers.

Configs live in the database (every worker adopts from there), and each worker caches the
parsed view. A worker re-reads the serials at most once per :data:`RECHECK_SECONDS`, so a
config adopted by another worker (or pulled from the parent) takes effect everywhere within
about a second, without parsing the config on every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from protocol.config import (
    Federation,
    SignedConfig,
    accept_config,
    parse_signed,
)
from protocol.encoding import canonical, loads_strict
from protocol.errors import ProtocolError, RemoteProtocolError
from protocol.keys import PublicKey

from ..storage import HubStore

RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Adoption:
    """The outcome of offering a config: the one now held, and whether it is new."""

    signed: SignedConfig
    adopted: bool


def config_text(signed: SignedConfig) -> str:
    """The stored and served form of a signed config (canonical JSON)."""
    return canonical(signed.to_dict()).decode("utf-8")


class FederationView:
    """Cached, parsed configs of one hub; refreshed from the store."""

    def __init__(
        self,
        store: HubStore,
        city: str,
        anchors: Sequence[PublicKey],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.city = city
        self._anchors = list(anchors)
        self._monotonic = monotonic
        #: Called after a new config was loaded (``hub run`` settles the heap there).
        self.loaded: Callable[[], None] = lambda: None
        self._checked = float("-inf")
        self._serials: dict[str, int] = {}
        self._texts: dict[str, str] = {}
        self._home: SignedConfig | None = None
        self._peers: dict[str, SignedConfig] = {}
        self._federation: Federation | None = None
        self._kids: dict[str, list[str]] = {}

    # -- reading ----------------------------------------------------------------------

    @property
    def home(self) -> SignedConfig | None:
        return self._home

    @property
    def federation(self) -> Federation | None:
        return self._federation

    def text(self, city: str | None = None) -> tuple[int, str] | None:
        """(serial, canonical JSON) of the newest config of ``city`` (default: home)."""
        city = self.city if city is None else city
        if city not in self._texts:
            return None
        return self._serials[city], self._texts[city]

    def require(self) -> Federation:
        """The federation view, or ``no_config`` when no config was ever adopted."""
        if self._federation is None:
            raise RemoteProtocolError("no_config", "this hub holds no federation config yet")
        return self._federation

    def resolve_key(self, kid: str, at: datetime) -> tuple[str, PublicKey] | None:
        """The member whose key ``kid`` is valid at ``at`` and not revoked, with the key."""
        federation = self._federation
        if federation is None:
            return None
        found: list[tuple[str, PublicKey]] = []
        for member_id in self._kids.get(kid, ()):
            try:
                found.append((member_id, federation.member_key(member_id, kid, at)))
            except ProtocolError:
                continue
        # One key shared by two members would make the caller ambiguous: refuse it.
        return found[0] if len(found) == 1 else None

    def key_refusal(self, kid: str, at: datetime) -> ProtocolError | None:
        """Why a listed key ``kid`` may not sign at ``at`` (``key_revoked``, ``key_not_valid``),
        so a revoked member is told so rather than "unknown key"; None when not listed."""
        federation = self._federation
        if federation is None:
            return None
        for member_id in self._kids.get(kid, ()):
            try:
                federation.member_key(member_id, kid, at)
            except ProtocolError as exc:
                return exc
        return None

    # -- loading ----------------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> None:
        """Re-read the configs when another worker (or the relay job) adopted a newer one."""
        now = self._monotonic()
        if not force and now - self._checked < RECHECK_SECONDS:
            return
        self._checked = now
        serials = await self._store.config_serials()
        if serials == self._serials:
            return
        latest = await self._store.latest_configs()
        self._load(latest)

    def _load(self, latest: dict[str, tuple[int, str]]) -> None:
        parsed = {city: parse_signed(loads_strict(text)) for city, (_, text) in latest.items()}
        home = parsed.get(self.city)
        peers: dict[str, SignedConfig] = {}
        if home is not None:
            for city, signed in parsed.items():
                peer = home.config.peers.get(city)
                if city == home.config.federation or peer is None:
                    continue
                try:
                    signed.verify(g.key for g in peer.root_keys)
                except ProtocolError:
                    continue  # a peer whose root key changed waits for its next config
                peers[city] = signed
        self._serials = {city: serial for city, (serial, _) in latest.items()}
        self._texts = {city: text for city, (_, text) in latest.items()}
        self._home = home
        self._peers = peers
        if home is None:
            self._federation = None
            self._kids = {}
            return
        self._federation = Federation(home.config, {c: s.config for c, s in peers.items()})
        kids: dict[str, list[str]] = {}
        for config in self._federation.configs():
            for member in config.members.values():
                for grant in member.keys:
                    kids.setdefault(grant.kid, []).append(member.id)
        self._kids = kids
        self.loaded()

    # -- adopting ----------------------------------------------------------------------

    async def adopt(self, obj: Any, at: datetime) -> Adoption:
        """Offer a signed home config (from the operator or the parent) by the rules of §6."""
        offered = parse_signed(obj)

        def txn(c: Connection) -> Adoption:
            if offered.config.federation != self.city:
                raise RemoteProtocolError(
                    "wrong_federation",
                    f"this hub belongs to {self.city}, not {offered.config.federation}",
                )
            latest = self._store.latest_configs_txn(c).get(self.city)
            current = None if latest is None else parse_signed(loads_strict(latest[1]))
            kept = accept_config(current, offered, self._anchors)
            adopted = kept is not current
            if adopted:
                self._store.save_config_txn(c, self.city, kept.serial, config_text(kept), at)
            return Adoption(kept, adopted)

        adoption = await self._store.db.run("adopt_config", txn)
        if adoption.adopted:
            await self.refresh(force=True)
        return adoption

    async def adopt_peer(self, obj: Any, at: datetime) -> Adoption:
        """Offer a metro peer city's config, verified against the root keys our config lists."""
        home = self._home
        if home is None:
            raise RemoteProtocolError("no_config", "adopt the home config first")
        offered = parse_signed(obj)
        city = offered.config.federation
        peer = home.config.peers.get(city)
        if peer is None:
            raise RemoteProtocolError("unknown_peer", f"{city} is not a metro peer")
        anchors = [g.key for g in peer.root_keys]

        def txn(c: Connection) -> Adoption:
            latest = self._store.latest_configs_txn(c).get(city)
            current = None if latest is None else parse_signed(loads_strict(latest[1]))
            kept = accept_config(current, offered, anchors)
            if kept is not current:
                self._store.save_config_txn(c, city, kept.serial, config_text(kept), at)
            return Adoption(kept, kept is not current)

        adoption = await self._store.db.run("adopt_peer_config", txn)
        if adoption.adopted:
            await self.refresh(force=True)
        return adoption
