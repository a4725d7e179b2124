"""The client's view of a peer's clock and the signed Tongban-Clock header (clock skew)."""

from __future__ import annotations

import pytest

from protocol.errors import RemoteProtocolError
from protocol.http.clock import CLOCK_HEADER, PeerClock
from protocol.http.signing import MemoryNonceCache, sign_request, verify_request
from protocol.keys import KeyPair

KEY = KeyPair.from_seed(bytes(range(32)))
URL = "https://hub.example.gov.cn/v1/feed"
NOW = 1_795_400_000  # 2026-11-23T…Z


def test_learns_the_offset_from_a_date_header() -> None:
    clock = PeerClock(lambda: NOW - 3 * 86_400 + 0.7)
    assert clock.created() == clock.local() == NOW - 3 * 86_400
    assert clock.learn("Mon, 23 Nov 2026 02:13:20 GMT")
    assert clock.offset == 3 * 86_400
    assert clock.created() == NOW
    assert not clock.learn("Mon, 23 Nov 2026 02:13:20 GMT")  # nothing new: no retry


@pytest.mark.parametrize("value", [None, "", "yesterday", "Mon, 99 Nov 2026 06:13:20 GMT"])
def test_ignores_a_missing_or_bad_date(value: str | None) -> None:
    clock = PeerClock(lambda: NOW)
    assert not clock.learn(value)
    assert clock.offset == 0


def signed(clock: str) -> dict[str, str]:
    headers = {CLOCK_HEADER: clock}
    headers.update(sign_request("GET", URL, headers, b"", KEY, created=NOW, nonce="n"))
    return headers


def verify(headers: dict[str, str]) -> int | None:
    return verify_request(
        "GET",
        URL,
        headers,
        b"",
        resolve_key={KEY.kid: KEY.public}.get,
        now=NOW,
        nonces=MemoryNonceCache(),
    ).clock


def test_the_clock_header_is_covered_and_returned() -> None:
    headers = signed(str(NOW - 86_400))
    assert "tongban-clock" in headers["Signature-Input"]
    assert verify(headers) == NOW - 86_400


def test_a_request_without_the_header_has_no_clock() -> None:
    headers = sign_request("GET", URL, {}, b"", KEY, created=NOW, nonce="n")
    assert "tongban-clock" not in headers["Signature-Input"]
    assert verify(headers) is None


def test_a_changed_clock_header_breaks_the_signature() -> None:
    headers = signed(str(NOW))
    headers[CLOCK_HEADER] = str(NOW - 86_400)
    with pytest.raises(RemoteProtocolError) as caught:
        verify(headers)
    assert caught.value.reason == "bad_request_signature"


@pytest.mark.parametrize("value", ["-5", "1.5", "12345678901234", "now"])
def test_a_clock_that_is_not_unix_seconds_is_refused(value: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        verify(signed(value))
    assert caught.value.reason == "bad_request_signature"
