"""The station's sync bar tells the clerk when this PC's clock is far off the hub's."""

from __future__ import annotations

import pytest

from node.services.status import clock_view


@pytest.mark.parametrize(
    ("offset", "warning"),
    [
        (0, None),
        (-300, None),
        (3 * 86_400 + 7200, "本机时钟比上级慢 74 小时 0 分，同步照常进行，请校准系统时间"),
        (-1800, "本机时钟比上级快 30 分钟，同步照常进行，请校准系统时间"),
    ],
)
def test_clock_warning(offset: int, warning: str | None) -> None:
    assert clock_view(offset) == {"clock_offset": offset, "clock_warning": warning}
