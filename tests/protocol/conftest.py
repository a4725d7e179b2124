"""Fixtures for protocol tests: the case-fold federation (see :mod:`tests.protocol.fed`)."""

from __future__ import annotations

import inspect

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """tests/protocol/ is plain synchronous pytest: the pure core needs no event loop."""
    for item in items:
        in_core = "tests/protocol" in item.nodeid.replace("\\", "/")
        if in_core and isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            raise pytest.UsageError(
                f"{item.nodeid} is async: protocol tests run with no event loop "
                "(put real-server tests in tests/integration/)"
            )
