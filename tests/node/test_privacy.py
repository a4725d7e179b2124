"""Masking of personal data: the one helper, and logs that never carry a full number."""

from __future__ import annotations

import hashlib
import logging

import pytest

from node.logs import KeyValueFormatter, log
from node.privacy import id_hash, mask_id, mask_phone, resident_id_ok, scrub

from .helpers import resident_id


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("210102199001011234", "2101**********1234"),
        ("21010219900101123x", "2101**********123X"),
        (" 2101 0219 9001 011234 ", "2101**********1234"),
        ("210102900101123", "2101*******1123"),
        ("E12345678", "E*******8"),
        ("AB", "**"),
    ],
)
def test_mask_id(number: str, masked: str) -> None:
    assert mask_id(number) == masked


@pytest.mark.parametrize(
    ("number", "masked"),
    [("13812345678", "138****5678"), ("024-2345678", "*******5678"), ("110", "***")],
)
def test_mask_phone(number: str, masked: str) -> None:
    assert mask_phone(number) == masked


def test_id_hash_is_of_the_normalized_number() -> None:
    expected = hashlib.sha256(b"21010219900101123X").hexdigest()
    assert id_hash("21010219900101123x") == expected
    assert id_hash(" 21010219900101123X ") == expected


def test_resident_id_check_character() -> None:
    good = resident_id()
    assert resident_id_ok(good)
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    assert not resident_id_ok(wrong)
    assert not resident_id_ok("12345")


def test_scrub_masks_numbers_in_free_text_only() -> None:
    number = resident_id()
    text = f"申请人 {number} 电话13812345678 办件 210102001001-20261123-0001 id=ab12cd"
    out = scrub(text)
    assert number not in out and "13812345678" not in out
    assert mask_id(number) in out and "138****5678" in out
    assert "210102001001-20261123-0001" in out  # case numbers are not personal data
    event_id = "a" + "1" * 18 + "b" * 45  # digits inside a hex id are left alone
    assert scrub(event_id) == event_id


def test_log_lines_are_key_value_and_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("node.test")
    number = resident_id()
    with caplog.at_level(logging.INFO, logger="node.test"):
        log(logger, "case.submitted", case="210102001001-20261123-0001", note=f"证件 {number}")
    line = KeyValueFormatter().format(caplog.records[-1])
    assert "event=case.submitted" in line
    assert "case=210102001001-20261123-0001" in line
    assert number not in line and mask_id(number) in line
