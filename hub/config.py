"""A hub's data directory and settings (docs/architecture.md "Data directories").

::

    <data>/hub.json          {"id", "name", "parent_url", "db", "host", "port", "public_base",
                              "root_keys": [<base64url public key>, ...]}
    <data>/member.key        the hub's member key (PKCS#8 PEM, mode 0600)
    <data>/seals/<dept>.key  one seal key per department the hub hosts (mode 0600)
    <data>/blobs/            content-addressed materials
    <data>/config.json       the signed federation config handed over at init (optional)

``db`` null means the embedded default ``sqlite+aiosqlite:///<data>/hub.db``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from protocol.errors import ProtocolError
from protocol.ids import DEPT_RE, check_member_id
from protocol.keys import KeyPair, PublicKey

SETTINGS_FILE = "hub.json"
MEMBER_KEY_FILE = "member.key"
SEALS_DIR = "seals"
BLOBS_DIR = "blobs"
INITIAL_CONFIG_FILE = "config.json"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8400


class SettingsError(Exception):
    """The data directory is missing, incomplete or malformed (a message for the operator)."""


@dataclass(frozen=True)
class HubSettings:
    """The contents of ``hub.json`` plus where the data directory is."""

    data: Path
    id: str
    name: str = ""
    parent_url: str | None = None
    db: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    public_base: str | None = None
    root_keys: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        try:
            check_member_id(self.id, "hub id")
        except ProtocolError as exc:
            raise SettingsError(exc.detail) from None
        for text in self.root_keys:
            try:
                PublicKey.from_text(text)
            except (ProtocolError, TypeError):
                raise SettingsError(
                    f"root key {str(text)[:20]!r}… is not a base64url key"
                ) from None
        if not 0 < self.port < 65536:
            raise SettingsError("port must be 1..65535")

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite+aiosqlite:///{self.data.resolve() / 'hub.db'}"

    @property
    def anchors(self) -> list[PublicKey]:
        """The root public keys trusted for the first config (enrolment anchor)."""
        return [PublicKey.from_text(t) for t in self.root_keys]

    @property
    def blob_dir(self) -> Path:
        return self.data / BLOBS_DIR

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "parent_url": self.parent_url,
            "db": self.db,
            "host": self.host,
            "port": self.port,
            "public_base": self.public_base,
            "root_keys": list(self.root_keys),
        }

    def with_db(self, url: str | None) -> HubSettings:
        return self if url is None else replace(self, db=url)

    @classmethod
    def load(cls, data: Path | str) -> HubSettings:
        path = Path(data) / SETTINGS_FILE
        try:
            obj = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"{path} not found: run `tongban hub init` first") from None
        except (OSError, ValueError) as exc:
            raise SettingsError(f"cannot read {path}: {exc}") from None
        if not isinstance(obj, dict):
            raise SettingsError(f"{path} must hold a JSON object")
        try:
            return cls(
                data=Path(data),
                id=obj["id"],
                name=obj.get("name", ""),
                parent_url=obj.get("parent_url"),
                db=obj.get("db"),
                host=obj.get("host", DEFAULT_HOST),
                port=int(obj.get("port", DEFAULT_PORT)),
                public_base=obj.get("public_base"),
                root_keys=tuple(obj.get("root_keys", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsError(f"{path}: {exc}") from None

    def load_member_key(self) -> KeyPair:
        return _read_key(self.data / MEMBER_KEY_FILE)

    def load_seal_keys(self) -> dict[str, KeyPair]:
        """Seal keys by department (the file name without ``.key``)."""
        seals: dict[str, KeyPair] = {}
        folder = self.data / SEALS_DIR
        if folder.is_dir():
            for path in sorted(folder.glob("*.key")):
                if DEPT_RE.match(path.stem):
                    seals[path.stem] = _read_key(path)
        return seals


def _read_key(path: Path) -> KeyPair:
    try:
        return KeyPair.from_file_bytes(path.read_bytes())
    except FileNotFoundError:
        raise SettingsError(f"{path} not found") from None
    except (OSError, ProtocolError) as exc:
        raise SettingsError(f"{path}: {exc}") from None


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only (never overwrite a key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def init_data_dir(
    settings: HubSettings,
    member_key: KeyPair,
    seal_keys: Mapping[str, KeyPair],
    *,
    signed_config: Mapping[str, Any] | None = None,
) -> None:
    """Create a hub's data directory; refuses to touch one that already holds a hub."""
    data = settings.data
    if (data / SETTINGS_FILE).exists() or (data / MEMBER_KEY_FILE).exists():
        raise SettingsError(f"{data} already holds a hub; refusing to overwrite its keys")
    for dept in seal_keys:
        if not DEPT_RE.match(dept):
            raise SettingsError(f"{dept!r} is not a department code (like 'sfj')")
    data.mkdir(parents=True, exist_ok=True)
    (data / SEALS_DIR).mkdir(exist_ok=True)
    (data / BLOBS_DIR).mkdir(exist_ok=True)
    write_private(data / MEMBER_KEY_FILE, member_key.to_file_bytes())
    for dept, key in sorted(seal_keys.items()):
        write_private(data / SEALS_DIR / f"{dept}.key", key.to_file_bytes())
    if signed_config is not None:
        text = json.dumps(signed_config, ensure_ascii=False, indent=1)
        (data / INITIAL_CONFIG_FILE).write_text(text + "\n", "utf-8")
    text = json.dumps(settings.to_dict(), ensure_ascii=False, indent=2)
    (data / SETTINGS_FILE).write_text(text + "\n", "utf-8")


def read_initial_config(data: Path) -> Any | None:
    """The signed config handed over at init, if any (JSON object, not yet trusted)."""
    path = data / INITIAL_CONFIG_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text("utf-8"))
