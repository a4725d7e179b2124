"""Hub commands (``tongban hub``): init, run, migrate."""

from __future__ import annotations

import click


@click.group()
def hub() -> None:
    """A district or city hub: custody, routing, review."""
