"""Structured logs never carry a full ID number or phone number."""

from __future__ import annotations

import logging

import pytest

from hub.logs import MaskingFormatter, fields, log, mask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("身份证 21010219900101123X 已核", "身份证 2101**********123X 已核"),
        ("id=210102199001011234", "id=2101**********1234"),
        ("电话13812345678", "电话138****5678"),
        ("case=210102001001-20261123-0007", "case=210102001001-20261123-0007"),
        ("event id " + "a" * 64, "event id " + "a" * 64),
    ],
)
def test_mask(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_log_lines_are_key_value_and_masked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tongban.hub.test")
    caplog.handler.setFormatter(MaskingFormatter())
    with caplog.at_level(logging.INFO, logger="tongban.hub.test"):
        log(logger, "case.note", applicant="210102199001011234", note="电话 13812345678")
    line = caplog.handler.format(caplog.records[0])
    assert 'event=case.note applicant=2101**********1234 note="电话 138****5678"' in line
    assert fields("x", a=None, b=1) == "event=x b=1"
