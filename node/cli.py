"""Station commands (``tongban node``): init, run."""

from __future__ import annotations

import click


@click.group()
def node() -> None:
    """The window node of a village or township station."""
