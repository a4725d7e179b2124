"""RFC 9421 request signing: golden vector, round trips and every rejection reason."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.http.signing import (
    MemoryNonceCache,
    VerifiedRequest,
    content_digest,
    sign_request,
    verify_request,
)
from protocol.keys import KeyPair, PublicKey

KEY = KeyPair.from_seed(bytes(range(32)))
OTHER = KeyPair.from_seed(bytes(range(1, 33)))
CREATED = 1_763_861_400  # 2025-11-23T01:30:00Z
NONCE = "golden-nonce-0001"
GOLDEN_SIGNATURE = (
    "tongban=:3Po4SLFA4ANuKvOnZo+sYxs4+COIZbeZaCTRT04YsaqhDKGfei2vdl5E"
    "MVMdREoSHi6ZwB5WYWP8a9YeNVCICA==:"
)
URL = "https://hub.example.gov.cn:8443/v1/push?batch=1"
BODY = gzip.compress(b'{"events":[]}', mtime=0)
HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


def resolve(kid: str) -> PublicKey | None:
    return {KEY.kid: KEY.public}.get(kid)


def signed(
    method: str = "POST",
    url: str = URL,
    body: bytes = BODY,
    *,
    key: KeyPair = KEY,
    created: int = CREATED,
    nonce: str = NONCE,
) -> dict[str, str]:
    headers = dict(HEADERS)
    headers.update(sign_request(method, url, HEADERS, body, key, created=created, nonce=nonce))
    return headers


def verify(
    headers: dict[str, str],
    *,
    method: str = "POST",
    url: str = URL,
    body: bytes = BODY,
    now: int = CREATED,
    nonces: MemoryNonceCache | None = None,
    resolve_key: Callable[[str], PublicKey | None] = resolve,
) -> VerifiedRequest:
    return verify_request(
        method,
        url,
        headers,
        body,
        resolve_key=resolve_key,
        now=now,
        nonces=nonces if nonces is not None else MemoryNonceCache(300),
    )


def library_signed(covered: tuple[str, ...], *, nonce: str | None = NONCE) -> dict[str, str]:
    """A signature made directly with the library, to craft requests our signer refuses to."""

    resolver = MappingKeyResolver(
        public_keys={}, private_keys={KEY.kid: Ed25519PrivateKey.from_private_bytes(KEY.seed)}
    )
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
    msg = SimpleNamespace(method="POST", url=URL, headers=dict(HEADERS))
    signer.sign(
        msg,
        key_id=KEY.kid,
        created=datetime.fromtimestamp(CREATED, tz=UTC),
        nonce=nonce,
        covered_component_ids=covered,
        body=BODY if "content-digest" in covered else None,
    )
    return dict(msg.headers)


# --- golden vector --------------------------------------------------------------------------


def test_golden_signature_input_is_stable() -> None:
    headers = sign_request("POST", URL, HEADERS, BODY, KEY, created=CREATED, nonce=NONCE)
    assert KEY.kid == "56475aa75463474c0285df5dbf2bcab7"
    assert headers["Signature-Input"] == (
        'tongban=("@method" "@target-uri" "content-digest");created=1763861400;'
        'keyid="56475aa75463474c0285df5dbf2bcab7";alg="ed25519";nonce="golden-nonce-0001"'
    )
    assert headers["Content-Digest"] == content_digest(BODY)
    assert headers["Content-Digest"].startswith("sha-256=:")
    # Ed25519 is deterministic, so the whole signature is a golden value too.
    assert headers["Signature"] == GOLDEN_SIGNATURE
    assert verify({**HEADERS, **headers}) == VerifiedRequest(KEY.kid, CREATED, NONCE)


def test_get_carries_digest_of_empty_body() -> None:
    headers = sign_request("GET", "http://127.0.0.1:8080/v1/feed?wait=25", {}, b"", KEY,
                           created=CREATED, nonce=NONCE)  # fmt: skip
    assert headers["Content-Digest"] == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    verify(headers, method="GET", url="http://127.0.0.1:8080/v1/feed?wait=25", body=b"")


def test_existing_digest_must_match_body() -> None:
    with pytest.raises(LocalProtocolError) as info:
        sign_request(
            "POST", URL, {"Content-Digest": content_digest(b"x")}, BODY, KEY, created=1, nonce="n"
        )
    assert info.value.reason == "bad_request"


def test_clock_window_is_ours_not_the_librarys() -> None:
    # The library alone would reject a signature "created" far from the wall clock; with
    # the clock injected, only our window counts.
    old = 1_000_000_000
    verify(signed(created=old), now=old + 300)
    verify(signed(created=old, nonce="n2"), now=old - 300)


# --- rejections ------------------------------------------------------------------------------


def reason_of(fn: Callable[[], object]) -> str:
    with pytest.raises(RemoteProtocolError) as info:
        fn()
    return info.value.reason


def test_unsigned() -> None:
    assert reason_of(lambda: verify(dict(HEADERS))) == "unsigned"
    only_input = {k: v for k, v in signed().items() if k != "Signature"}
    assert reason_of(lambda: verify(only_input)) == "unsigned"


def test_unknown_key() -> None:
    assert reason_of(lambda: verify(signed(key=OTHER))) == "unknown_key"


@pytest.mark.parametrize(
    ("change", "kwargs"),
    [
        ("method", {"method": "PUT"}),
        ("url", {"url": "https://hub.example.gov.cn:8443/v1/push?batch=2"}),
        ("host", {"url": "https://other.example.gov.cn:8443/v1/push?batch=1"}),
        ("scheme", {"url": "http://hub.example.gov.cn:8443/v1/push?batch=1"}),
    ],
)
def test_bad_signature_when_covered_component_differs(change: str, kwargs: dict[str, str]) -> None:
    assert reason_of(lambda: verify(signed(), **kwargs)) == "bad_request_signature"  # type: ignore[arg-type]


def test_bad_signature_when_signature_bytes_tampered() -> None:
    headers = signed()
    other = signed(nonce="another")
    headers["Signature"] = other["Signature"]
    assert reason_of(lambda: verify(headers)) == "bad_request_signature"


def test_bad_signature_when_digest_header_tampered() -> None:
    headers = signed()
    headers["Content-Digest"] = content_digest(b"something else")
    assert reason_of(lambda: verify(headers, body=b"something else")) == "bad_request_signature"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Signature-Input", "not a dictionary ("),
        ("Signature", "tongban=notbytes"),
        ("Signature", "other=:AAAA:"),
        ("Signature-Input", 'a=("@method");keyid="x", b=("@method");keyid="y"'),
        ("Signature-Input", 'tongban="@method";keyid="x"'),
    ],
)
def test_bad_signature_when_malformed(name: str, value: str) -> None:
    headers = signed()
    headers[name] = value
    assert reason_of(lambda: verify(headers)) == "bad_request_signature"


def test_wrong_alg() -> None:
    headers = signed()
    headers["Signature-Input"] = headers["Signature-Input"].replace('"ed25519"', '"hmac-sha256"')
    assert reason_of(lambda: verify(headers)) == "bad_request_signature"


def test_digest_mismatch() -> None:
    tampered = gzip.compress(b'{"events":[{"evil":1}]}', mtime=0)
    assert reason_of(lambda: verify(signed(), body=tampered)) == "digest_mismatch"


def test_digest_header_missing() -> None:
    headers = {k: v for k, v in signed().items() if k != "Content-Digest"}
    assert reason_of(lambda: verify(headers)) == "digest_mismatch"


@pytest.mark.parametrize(
    "covered",
    [
        ("@method", "@target-uri"),
        ("@method", "content-digest"),
        ("@target-uri", "content-digest"),
    ],
)
def test_uncovered_components(covered: tuple[str, ...]) -> None:
    assert reason_of(lambda: verify(library_signed(covered))) == "uncovered_components"


def test_uncovered_nonce() -> None:
    headers = library_signed(("@method", "@target-uri", "content-digest"), nonce=None)
    assert reason_of(lambda: verify(headers)) == "uncovered_components"


def test_library_signature_with_our_components_verifies() -> None:
    # Interop: any RFC 9421 signer producing the same coverage is accepted.
    verify(library_signed(("@method", "@target-uri", "content-digest")))


@pytest.mark.parametrize("offset", [301, -301, 10_000])
def test_stale_request(offset: int) -> None:
    assert reason_of(lambda: verify(signed(), now=CREATED + offset)) == "stale_request"


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_window_edges_accepted(offset: int) -> None:
    verify(signed(), now=CREATED + offset)


def test_replayed_nonce() -> None:
    nonces = MemoryNonceCache(300)
    verify(signed(), nonces=nonces)
    assert reason_of(lambda: verify(signed(), nonces=nonces)) == "replayed_nonce"
    # Same nonce from another key is a different request.
    verify(
        signed(key=OTHER),
        nonces=nonces,
        resolve_key=lambda kid: {KEY.kid: KEY.public, OTHER.kid: OTHER.public}.get(kid),
    )


def test_failed_requests_do_not_record_nonces() -> None:
    nonces = MemoryNonceCache(300)
    reason_of(lambda: verify(signed(), body=b"tampered", nonces=nonces))
    assert len(nonces) == 0
    verify(signed(), nonces=nonces)
    assert len(nonces) == 1


# --- nonce cache -----------------------------------------------------------------------------


def test_nonce_cache_evicts_by_explicit_now() -> None:
    cache = MemoryNonceCache(300)
    assert cache.seen("k", "a", 1000) is False
    assert cache.seen("k", "a", 1000) is True
    cache.evict(now=1300)  # created 1000 is exactly at the window edge: keep
    assert cache.seen("k", "a", 1000) is True
    cache.evict(now=1301)
    assert len(cache) == 0


def test_nonce_cache_memory_is_bounded_by_window() -> None:
    cache = MemoryNonceCache(10)
    for t in range(10_000):
        assert cache.seen("k", f"n{t}", t) is False
    # Only what is younger than twice the window (the clock-free bound) is kept.
    assert len(cache) <= 21


def test_nonce_cache_rejects_bad_window() -> None:
    with pytest.raises(LocalProtocolError):
        MemoryNonceCache(0)
