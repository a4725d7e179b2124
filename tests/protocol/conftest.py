"""Fixtures for protocol tests: the case-fold federation (see :mod:`tests.protocol.fed`)."""

from __future__ import annotations

import pytest

from protocol.case import CaseFolder
from protocol.config import Federation
from tests.protocol.fed import Maker, federation


@pytest.fixture
def case_federation() -> Federation:
    """沈阳 2101 with metro peer 抚顺 2104, both configs signed and verified."""
    return federation()


@pytest.fixture
def folder(case_federation: Federation) -> CaseFolder:
    return CaseFolder(case_federation)


@pytest.fixture
def make() -> Maker:
    """An event maker for the default case (opened at village 210102001001 on 2026-11-02)."""
    return Maker()
