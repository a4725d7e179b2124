"""A station's data directory: ``station.json``, ``member.key``, ``node.db``, ``blobs/``.

``station.json`` (docs/architecture.md)::

    {"id": "210102001001", "name": "…村便民服务站", "parent_url": "http://127.0.0.1:8400/",
     "host": "127.0.0.1", "port": 8600, "root_keys": ["<base64url Ed25519 public key>", …]}

Files are written to a temp file, fsynced and renamed (``os.replace``), so a power cut leaves
either the old or the new file. Nothing here is Linux-only: on Windows ``chmod(0o600)`` only
toggles the read-only flag, and the key file relies on the profile directory's ACLs.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.errors import LocalProtocolError, ProtocolError
from protocol.ids import check_member_id
from protocol.keys import KeyPair, PublicKey

STATION_FILE = "station.json"
KEY_FILE = "member.key"
DB_FILE = "node.db"
BLOB_DIR = "blobs"
DEFAULT_PORT = 8600
DEFAULT_HOST = "127.0.0.1"


class StationError(Exception):
    """The data directory is missing, incomplete or malformed (a CLI message)."""


@dataclass(frozen=True)
class Station:
    """What ``station.json`` says about this station."""

    id: str
    parent_url: str
    name: str = ""
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    root_keys: tuple[PublicKey, ...] = field(default=())

    def __post_init__(self) -> None:
        try:
            check_member_id(self.id, "station id")
        except ProtocolError as exc:
            raise StationError(exc.detail) from None
        if not self.parent_url.startswith(("http://", "https://")):
            raise StationError(f"parent_url must be an http(s) URL, not {self.parent_url!r}")
        if not 0 < self.port < 65536:
            raise StationError(f"port {self.port} is out of range")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "parent_url": self.parent_url,
            "host": self.host,
            "port": self.port,
            "root_keys": [k.to_text() for k in self.root_keys],
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Station:
        if not isinstance(obj, dict):
            raise StationError("station.json must hold a JSON object")
        try:
            roots = tuple(PublicKey.from_text(str(k)) for k in obj.get("root_keys", []))
            return cls(
                id=str(obj["id"]),
                parent_url=str(obj["parent_url"]),
                name=str(obj.get("name", "")),
                host=str(obj.get("host", DEFAULT_HOST)),
                port=int(obj.get("port", DEFAULT_PORT)),
                root_keys=roots,
            )
        except KeyError as exc:
            raise StationError(f"station.json lacks {exc.args[0]!r}") from None
        except (ProtocolError, ValueError, TypeError) as exc:
            raise StationError(f"station.json: {exc}") from None


@dataclass(frozen=True)
class DataDir:
    """Paths inside a station's data directory."""

    root: Path

    @property
    def station_file(self) -> Path:
        return self.root / STATION_FILE

    @property
    def key_file(self) -> Path:
        return self.root / KEY_FILE

    @property
    def db_file(self) -> Path:
        return self.root / DB_FILE

    @property
    def blob_dir(self) -> Path:
        return self.root / BLOB_DIR

    @property
    def db_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.db_file.resolve().as_posix()}"

    def load_station(self) -> Station:
        try:
            text = self.station_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StationError(
                f"{self.station_file} not found: run `tongban node init` first"
            ) from None
        try:
            return Station.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise StationError(f"{self.station_file}: {exc}") from None

    def save_station(self, station: Station) -> None:
        text = json.dumps(station.to_dict(), ensure_ascii=False, indent=2) + "\n"
        write_atomic(self.station_file, text.encode("utf-8"))

    def load_key(self) -> KeyPair:
        try:
            return KeyPair.from_file_bytes(self.key_file.read_bytes())
        except FileNotFoundError:
            raise StationError(f"{self.key_file} not found: run `tongban node init`") from None
        except LocalProtocolError as exc:
            raise StationError(f"{self.key_file}: {exc.detail}") from None

    def create_key(self) -> KeyPair:
        """Generate the member key from OS randomness and write it with mode 0600."""
        if self.key_file.exists():
            raise StationError(f"{self.key_file} exists: refusing to replace a member key")
        key = KeyPair.generate(os.urandom(32))
        write_atomic(self.key_file, key.to_file_bytes(), mode=0o600)
        return key


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a fsynced temp file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed or widened it
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
