"""Suite-wide fixtures: services that some tests need (PostgreSQL, a browser).

On a developer laptop without them those tests skip with a clear reason; in CI
(TONGBAN_REQUIRE_SERVICES=1, set by .ci/run) a missing service fails them instead.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_SERVICES = os.environ.get("TONGBAN_REQUIRE_SERVICES") == "1"


def need_service(what: str, why: str) -> None:
    """Skip (developer machine) or fail (CI) because ``what`` is unavailable."""
    message = f"{what} unavailable: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (CI requires it)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path to Debian's chromium for Playwright (executable_path)."""
    path = os.environ.get("TONGBAN_CHROMIUM") or shutil.which("chromium")
    if not path:
        need_service("chromium", "apt-get install chromium")
    assert path is not None
    return path
