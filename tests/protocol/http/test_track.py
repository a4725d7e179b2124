"""The 进度查询 code hash: Argon2id (format 2), the legacy salted SHA-256 (format 1), and
bodies that must never match or make a verifier spend more than MAX_COST."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.http.web.track import (
    ARGON2,
    MAX_COST,
    attempt_keys,
    code_hash,
    code_matches,
    new_code,
    track_body,
)

NUMBER = "210102001001-20261123-0001"


def test_format_2_matches_its_code_only_and_hides_it() -> None:
    code = new_code()
    track = track_body(code)
    assert (track["v"], track["alg"]) == (2, "argon2id")
    assert {k: track[k] for k in ("t", "m", "p")} == ARGON2
    assert code not in str(track) and len(track["salt"]) == 32 and len(track["hash"]) == 64
    assert code_matches({"track": track}, NUMBER, code.lower())  # typed in lower case
    assert code_matches({"track": track}, NUMBER, " ".join(code))  # with spaces
    assert not code_matches({"track": track}, NUMBER, "222222" if code != "222222" else "333333")
    assert track_body(code)["hash"] != track["hash"]  # a fresh salt per case


def test_format_1_is_still_read() -> None:
    track = {"salt": "0f1e2d3c", "hash": code_hash(NUMBER, "ABC234", "0f1e2d3c")}
    assert code_matches({"track": track}, NUMBER, "abc234")
    assert not code_matches({"track": track}, NUMBER, "ABC235")
    assert not code_matches({"track": track}, NUMBER + "x", "ABC234")


@pytest.mark.parametrize(
    "change",
    [
        {"v": 3},
        {"alg": "scrypt"},
        {"t": MAX_COST["t"] + 1},
        {"m": MAX_COST["m"] + 1},
        {"p": 0},
        {"m": 4},
        {"t": "2"},
        {"salt": "not hex"},
        {"salt": "ab"},  # shorter than Argon2 allows
        {"salt": 7},
        {"hash": None},
    ],
    ids=str,
)
def test_bad_bodies_never_match(change: dict[str, Any]) -> None:
    track = {**track_body("ABC234"), **change}
    assert not code_matches({"track": track}, NUMBER, "ABC234")


def test_no_track_never_matches() -> None:
    assert not code_matches({}, NUMBER, "ABC234")
    assert not code_matches({"track": "ABC234"}, NUMBER, "ABC234")


def test_attempt_keys_are_per_client_and_per_case_and_bounded() -> None:
    assert attempt_keys("127.0.0.1", NUMBER) == ("c:127.0.0.1", f"n:{NUMBER}")
    assert all(len(k) <= 80 for k in attempt_keys("x" * 500, "9" * 500))
