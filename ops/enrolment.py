"""Make an enrolment request and its keys in a member's data directory.

A node or hub normally does this itself at ``init`` (the key never leaves the machine it was
made on). ``tongban ops member request`` offers the same for demos, tests and a hub set up by
hand; the files follow the data-directory layout of docs/architecture.md::

    <data>/member.key        the member key, PKCS#8 PEM, mode 0600
    <data>/seals/<dept>.key  one seal key per department a hub hosts, mode 0600
    <data>/seals/<hub>-<dept>.key  at a station: a key an authority entrusted to its window
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from protocol.enrol import Enrolment, enrolment_text, make_enrolment
from protocol.errors import ProtocolError
from protocol.keys import KeyPair

from .federation import OpsError


def _write_key(path: Path, key: KeyPair) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.to_file_bytes())
        out.flush()
        os.fsync(out.fileno())


def entrust_key(data: Path, authority_id: str) -> KeyPair:
    """A new seal key for ``authority_id`` in a station's ``data``: ``seals/<hub>-<dept>.key``
    (mode 0600), the file the window seals its 即办 results with (node/services/window.py)."""
    folder = data / "seals"
    path = folder / f"{authority_id.replace(':', '-')}.key"
    if path.exists():
        raise OpsError(f"{path} 已存在: 该窗口已持有 {authority_id} 的签章密钥")
    key = KeyPair.generate(secrets.token_bytes(32))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_key(path, key)
    return key


def make_request(
    data: Path,
    member_id: str,
    name: str,
    role: str,
    parent: str | None,
    endpoint: str | None,
    departments: Iterable[str],
    at: datetime,
    *,
    dry_run: bool = False,
) -> tuple[str, dict[str, Any]]:
    """Create the keys under ``data`` and return the request as one line and as JSON."""
    depts = sorted(set(departments))
    member_key = KeyPair.generate(secrets.token_bytes(32))
    seals = {d: KeyPair.generate(secrets.token_bytes(32)) for d in depts}
    try:
        enrolment = Enrolment(
            id=member_id,
            name=name,
            role=role,
            parent=parent,
            endpoint=endpoint,
            public=member_key.public,
            created=at.isoformat(),
            seal_keys={d: k.public for d, k in seals.items()},
        )
    except ProtocolError as exc:
        raise OpsError(f"入网申请无效: {exc.detail or exc.reason} ({exc.reason})") from None
    request = make_enrolment(member_key, enrolment)
    targets = [data / "member.key", *(data / "seals" / f"{d}.key" for d in depts)]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise OpsError(f"密钥文件已存在, 不覆盖: {', '.join(existing)}")
    if not dry_run:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        if depts:
            (data / "seals").mkdir(mode=0o700, exist_ok=True)
        _write_key(data / "member.key", member_key)
        for dept, key in seals.items():
            _write_key(data / "seals" / f"{dept}.key", key)
    return enrolment_text(request), request
