"""Ed25519 keys: generation from a seed, stable key ids, key-file bytes, base64url public keys.

A key id (``kid``) is the first 16 bytes of SHA-256 over the raw 32-byte public key, in
lowercase hex: stable, derived, and the same in every implementation. Algorithms are named
(``alg``) so a 国密 suite (SM2/SM3) can sit beside Ed25519 later without a format change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from .encoding import b64url_decode, b64url_encode
from .errors import LocalProtocolError, RemoteProtocolError

ALG_ED25519 = "ed25519"
ALGORITHMS = frozenset({ALG_ED25519})


def key_id(public_raw: bytes) -> str:
    """Stable key id of a raw public key."""
    return hashlib.sha256(public_raw).hexdigest()[:32]


@dataclass(frozen=True)
class PublicKey:
    """A verifying key with its algorithm and derived id."""

    raw: bytes
    alg: str = ALG_ED25519
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.alg, str) or self.alg not in ALGORITHMS:
            raise RemoteProtocolError("unknown_alg", f"algorithm {self.alg!r} is not supported")
        if len(self.raw) != 32:
            raise RemoteProtocolError("bad_key", "an Ed25519 public key is 32 bytes")
        object.__setattr__(self, "kid", key_id(self.raw))

    @classmethod
    def from_text(cls, text: str, alg: str = ALG_ED25519) -> PublicKey:
        """Parse the base64url text form."""
        return cls(b64url_decode(text, reason="bad_key"), alg)

    def to_text(self) -> str:
        """base64url text of the raw key."""
        return b64url_encode(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is this key's signature over ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class KeyPair:
    """A signing key: build it with :meth:`generate`, :meth:`from_seed`, :meth:`from_file_bytes`."""

    seed: bytes = field(repr=False)
    public: PublicKey = field(init=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise LocalProtocolError("bad_key", "an Ed25519 seed is 32 bytes")
        pub = self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "public", PublicKey(pub))

    @classmethod
    def generate(cls, entropy: bytes) -> KeyPair:
        """A key pair from 32 bytes of caller-supplied randomness (the core reads no OS state)."""
        return cls(entropy)

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        """The deterministic key pair of a 32-byte seed (golden vectors, tests)."""
        return cls(seed)

    @property
    def kid(self) -> str:
        return self.public.kid

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature over ``message``."""
        return self._private().sign(message)

    def to_file_bytes(self, passphrase: bytes | None = None) -> bytes:
        """PKCS#8 PEM for a key file, encrypted when a passphrase is given (root keys)."""
        enc = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
        return self._private().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, enc)

    @classmethod
    def from_file_bytes(cls, data: bytes, passphrase: bytes | None = None) -> KeyPair:
        """Inverse of :meth:`to_file_bytes`."""
        try:
            key = load_pem_private_key(data, password=passphrase)
        except (ValueError, TypeError) as exc:
            raise LocalProtocolError("bad_key_file", str(exc)) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise LocalProtocolError("bad_key_file", "not an Ed25519 private key")
        return cls(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
