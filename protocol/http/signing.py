"""RFC 9421 HTTP Message Signatures for every sync request (DESIGN.md §4).

A request is signed with Ed25519 over exactly ``@method``, ``@target-uri`` and
``content-digest`` with the parameters ``created``, ``keyid``, ``alg`` and ``nonce``. The
Content-Digest (RFC 9530, sha-256) covers the body *as sent*: the gzip bytes when
``Content-Encoding: gzip``, and ``b""`` for a GET, so every request carries one.

``@target-uri`` is the full URL as the client addressed it (``scheme://host[:port]/path?query``).
A server behind a reverse proxy must rebuild that URL from its public base (or from
X-Forwarded-Proto/Host when it trusts the proxy); see :func:`protocol.http.server.authenticate`.

The cryptography and structured-field parsing come from ``http-message-signatures``; the
policy (which components, the clock window, replay detection, and one distinct reason per
failure) lives here, with the clock and the nonce cache injected. Nothing here touches the
network, so these functions are unit-testable without an event loop.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import http_sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)

from ..errors import LocalProtocolError, RemoteProtocolError
from ..keys import ALG_ED25519, KeyPair, PublicKey

#: Covered components, in signing order. Verification requires at least these.
COVERED_COMPONENTS: Final = ("@method", "@target-uri", "content-digest")
#: Signature parameters a request must carry (``alg`` is optional but checked when present).
REQUIRED_PARAMS: Final = ("created", "keyid", "nonce")
#: Dictionary label of our signature in Signature-Input / Signature (not covered; cosmetic).
SIGNATURE_LABEL: Final = "tongban"
#: The client's own clock (see protocol.http.clock), covered when the request carries it.
CLOCK_COMPONENT: Final = "tongban-clock"
#: Default accepted clock skew, seconds, either side of the server's now.
DEFAULT_WINDOW: Final = 300


@dataclass(frozen=True)
class VerifiedRequest:
    """What a valid request signature proves: who signed it, when, and with which nonce."""

    keyid: str
    created: int
    nonce: str
    #: The client's uncorrected clock from a covered ``Tongban-Clock`` header, if any.
    clock: int | None = None


class _Message:
    """The minimal request view ``http-message-signatures`` resolves components against."""

    def __init__(self, method: str, url: str, headers: Any) -> None:
        self.method = method
        self.url = url
        self.headers = headers


class _OneKey(HTTPSignatureKeyResolver):
    """Resolves only the key we already looked up, so lookup failures are reported by us."""

    def __init__(self, keyid: str, key: PublicKey) -> None:
        self._keyid = keyid
        self._key = Ed25519PublicKey.from_public_bytes(key.raw)

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        return self._key if key_id == self._keyid else None


class _Verifier(HTTPMessageVerifier):
    # The library checks ``created``/``expires`` against datetime.now() with a fixed 5 s
    # skew. We check them ourselves against the injected ``now`` and ``window``, so its
    # hidden clock must not get a vote.
    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        return None


def content_digest(body: bytes) -> str:
    """The ``Content-Digest`` field value (sha-256) of ``body`` as sent."""
    return str(ContentDigest.create(body))


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    key: KeyPair,
    *,
    created: int,
    nonce: str,
) -> dict[str, str]:
    """Headers to add to a request (Content-Digest, Signature-Input, Signature).

    ``url`` must be exactly the URL the HTTP client will address and ``body`` exactly the
    bytes it will send (already gzip-compressed if it sends ``Content-Encoding: gzip``).
    """
    message = _Message(method.upper(), url, dict(headers))
    covered: tuple[str, ...] = COVERED_COMPONENTS
    if _header(headers, CLOCK_COMPONENT) is not None:
        covered = (*COVERED_COMPONENTS, CLOCK_COMPONENT)
    # prepare()/apply() around KeyPair.sign: the library never needs the private key.
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519)
    try:
        prepared = signer.prepare(
            message,
            key_id=key.kid,
            created=datetime.fromtimestamp(created, tz=UTC),
            nonce=nonce,
            label=SIGNATURE_LABEL,
            include_alg=True,
            covered_component_ids=covered,
            body=body,
            # A caller-supplied Content-Digest is kept but checked against the body.
            use_existing_digest=True,
        )
        signer.apply(message, prepared, key.sign(prepared.signature_base))
    except HTTPMessageSignaturesException as exc:
        raise LocalProtocolError("bad_request", f"cannot sign request: {exc}") from None
    wanted = ("content-digest", "signature-input", "signature")
    return {name: value for name, value in message.headers.items() if name.lower() in wanted}


class NonceCache(Protocol):
    """Replay detection for request nonces, scoped per signing key."""

    def seen(self, keyid: str, nonce: str, created: int) -> bool:
        """True if ``(keyid, nonce)`` was seen before; otherwise record it and return False."""
        ...


class MemoryNonceCache:
    """In-process :class:`NonceCache` whose memory is bounded by the clock window.

    A nonce only needs remembering while its request could still pass the window check,
    i.e. while ``created >= now - window``. Eviction is driven by ``created`` values, never
    by a hidden clock: :meth:`evict` takes ``now`` explicitly, and :meth:`seen` also evicts
    against the newest ``created`` it has recorded (any accepted request satisfies
    ``created <= now + window``, so ``created < newest - 2*window`` implies stale).
    Memory is therefore bounded by the authenticated request rate times the window;
    verification records nonces only after the signature checks out, so forged requests
    cannot fill it.
    """

    def __init__(self, window_seconds: int = DEFAULT_WINDOW) -> None:
        if window_seconds <= 0:
            raise LocalProtocolError("bad_window", "the nonce window must be positive")
        self.window = window_seconds
        self._seen: set[tuple[str, str]] = set()
        self._by_created: list[tuple[int, str, str]] = []
        self._newest: int | None = None

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, keyid: str, nonce: str, created: int) -> bool:
        """True if already seen, else record it (see :class:`NonceCache`)."""
        if self._newest is None or created > self._newest:
            self._newest = created
        self._evict_before(self._newest - 2 * self.window)
        entry = (keyid, nonce)
        if entry in self._seen:
            return True
        self._seen.add(entry)
        heapq.heappush(self._by_created, (created, keyid, nonce))
        return False

    def evict(self, now: int) -> None:
        """Forget nonces whose requests are older than the window at ``now``."""
        self._evict_before(now - self.window)

    def _evict_before(self, cutoff: int) -> None:
        heap = self._by_created
        while heap and heap[0][0] < cutoff:
            _, keyid, nonce = heapq.heappop(heap)
            self._seen.discard((keyid, nonce))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that joins repeated field lines, as RFC 9110 §5.3 allows."""
    values = [v for k, v in headers.items() if k.lower() == name]
    return ", ".join(values) if values else None


def _parse_dictionary(value: str, name: str) -> dict[str, Any]:
    def duplicate(key: str, context: str) -> None:
        if context == "dictionary":
            raise ValueError(f"duplicate label {key!r}")

    try:
        parsed = http_sf.parse(
            value.encode("ascii"), tltype="dictionary", on_duplicate_key=duplicate
        )
    except (ValueError, TypeError, UnicodeError) as exc:
        raise RemoteProtocolError("bad_request_signature", f"malformed {name}: {exc}") from None
    if not isinstance(parsed, dict):  # pragma: no cover - tltype guarantees a dict
        raise RemoteProtocolError("bad_request_signature", f"malformed {name}")
    return parsed


def _signature_input(headers: Mapping[str, str]) -> tuple[list[str], dict[str, Any]]:
    """The covered component names and parameters of the request's single signature."""
    sig_input = _header(headers, "signature-input")
    signature = _header(headers, "signature")
    if not sig_input or not signature:
        raise RemoteProtocolError("unsigned", "Signature-Input and Signature are required")
    inputs = _parse_dictionary(sig_input, "Signature-Input")
    signatures = _parse_dictionary(signature, "Signature")
    # One signer per request: several labels would need a tag policy we do not have.
    if len(inputs) != 1 or inputs.keys() != signatures.keys():
        raise RemoteProtocolError(
            "bad_request_signature", "expected exactly one signature with matching labels"
        )
    members, params = next(iter(inputs.values()))
    if not isinstance(members, list):
        raise RemoteProtocolError("bad_request_signature", "Signature-Input is not an inner list")
    # Components with parameters (";sf", ";key=...") resolve to different values, so
    # only the bare identifiers count towards the required coverage.
    names = [name for name, p in members if isinstance(name, str) and not p]
    return names, dict(params)


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    resolve_key: Callable[[str], PublicKey | None],
    now: int,
    nonces: NonceCache,
    window: int = DEFAULT_WINDOW,
) -> VerifiedRequest:
    """Check a request's signature, digest, clock window and nonce; raise RemoteProtocolError.

    ``url`` is the full target URI as the client addressed it, ``body`` the bytes as received
    (before any Content-Encoding is undone). Reasons, in the order checked: ``unsigned``,
    ``bad_request_signature`` (malformed), ``uncovered_components``, ``unknown_key``,
    ``stale_request``, ``digest_mismatch`` (header missing), ``bad_request_signature``
    (cryptographic failure), ``digest_mismatch`` (body differs), ``replayed_nonce``.
    The nonce is recorded only once everything else has passed; callers may rely on this
    order (the hub claims the nonce in its database, shared by all workers, after this returns).
    """
    names, params = _signature_input(headers)
    missing = [c for c in COVERED_COMPONENTS if c not in names]
    missing += [p for p in REQUIRED_PARAMS if p not in params]
    if missing:
        raise RemoteProtocolError("uncovered_components", f"signature must cover {missing}")
    keyid, created, nonce = params["keyid"], params["created"], params["nonce"]
    if not isinstance(keyid, str) or not isinstance(nonce, str) or type(created) is not int:
        raise RemoteProtocolError("bad_request_signature", "keyid/nonce/created have wrong types")
    if not nonce or len(nonce) > 128:
        raise RemoteProtocolError("bad_request_signature", "nonce must be 1..128 characters")
    if params.get("alg", ALG_ED25519) != ALG_ED25519:
        raise RemoteProtocolError("bad_request_signature", f"alg must be {ALG_ED25519!r}")
    key = resolve_key(keyid)
    if key is None:
        raise RemoteProtocolError("unknown_key", f"no member key {keyid[:64]!r}")
    if key.alg != ALG_ED25519:
        raise RemoteProtocolError("unknown_key", f"key {keyid[:64]!r} is not an Ed25519 key")
    if abs(now - created) > window:
        raise RemoteProtocolError("stale_request", f"created {created} is not within {window}s")
    expires = params.get("expires")
    if expires is not None and (type(expires) is not int or expires < now):
        raise RemoteProtocolError("stale_request", "signature has expired")
    if _header(headers, "content-digest") is None:
        raise RemoteProtocolError("digest_mismatch", "Content-Digest is required")

    verifier = _Verifier(signature_algorithm=algorithms.ED25519, key_resolver=_OneKey(keyid, key))
    try:
        (result,) = verifier.verify(
            _Message(method.upper(), url, headers),
            max_age=None,
            # Coverage was checked above, on the same parse of Signature-Input (asking the
            # library again re-parses every component: a third of the cost of a request).
            require_components=(),
        )
    except HTTPMessageSignaturesException as exc:
        raise RemoteProtocolError("bad_request_signature", str(exc)[:200]) from None
    signed = result.covered_components
    if any(f'"{c}"' not in signed for c in COVERED_COMPONENTS):  # insurance: checked above
        raise RemoteProtocolError("uncovered_components", "the verified signature covers less")
    # The header is authentic now; compare it with the body ourselves, because the
    # library reports a digest mismatch as the same InvalidSignature as a forgery.
    try:
        ContentDigest.verify_components(result.covered_components, body)
    except InvalidSignature as exc:
        raise RemoteProtocolError("digest_mismatch", str(exc)) from None
    clock = None
    if CLOCK_COMPONENT in names:
        value = _header(headers, CLOCK_COMPONENT) or ""
        if not value.isascii() or not value.isdigit() or len(value) > 12:
            raise RemoteProtocolError("bad_request_signature", "Tongban-Clock must be Unix seconds")
        clock = int(value)
    if nonces.seen(keyid, nonce, created):
        raise RemoteProtocolError("replayed_nonce", f"nonce already used by key {keyid[:64]!r}")
    return VerifiedRequest(keyid=keyid, created=created, nonce=nonce, clock=clock)
