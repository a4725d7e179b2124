"""``/v1/config``: serving the newest signed config, adopting one the operator publishes."""

from __future__ import annotations

import logging
from typing import Any

from protocol.errors import RemoteProtocolError

from ..core import Hub
from ..logs import log
from .federation import Adoption

logger = logging.getLogger("tongban.hub.config")


def _serial(have: str | None) -> int | None:
    if have is None or have == "":
        return None
    if not have.isascii() or not have.isdigit() or len(have) > 15:
        raise RemoteProtocolError("bad_query", "have is a config serial")
    return int(have)


async def config_answer(hub: Hub, have: str | None, city: str | None = None) -> str | None:
    """The signed config (canonical JSON), or None when ``have`` is already current."""
    held = _serial(have)
    await hub.view.refresh()
    if city is not None and (len(city) != 4 or not city.isdigit()):
        raise RemoteProtocolError("bad_query", "city is a 4-digit city code")
    found = hub.view.text(city)
    if found is None:
        raise RemoteProtocolError("no_config", "this hub holds no such config yet")
    serial, text = found
    if held is not None and held >= serial:
        return None
    return text


async def offer_config(hub: Hub, obj: Any) -> Adoption:
    """Adopt a signed config by the trust rules (stale_serial, serial_conflict, … as 400)."""
    adoption = await hub.view.adopt(obj, hub.now())
    if adoption.adopted:
        log(logger, "config.adopted", serial=adoption.signed.serial, source="post")
    return adoption
