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


# The suite runs on several pytest-xdist workers (Makefile). The process-level tests mostly
# wait on sockets and subprocesses, so they go first: each worker takes one early instead
# of a single worker finishing them all at the end. Heaviest first.
SLOW_FIRST = (
    "tests/integration/test_demo.py",
    "tests/integration/test_tiers_and_cities.py",
    "tests/ops/test_docs_commands.py",
    "tests/integration/test_crash_matrix.py",
    "tests/integration/test_operations.py",
    "tests/integration/test_village_district.py",
    "tests/integration/test_weak_link.py",
    "tests/integration/test_browser_supplement.py",
    "tests/protocol/test_case.py",
    "tests/test_bench_quick.py",
    "tests/integration/",
    "tests/hub/test_fuzz_push.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return next(
            (i for i, p in enumerate(SLOW_FIRST) if path.startswith(p)),
            len(SLOW_FIRST),
        )

    items.sort(key=rank)  # stable: the order within a file stays as written
