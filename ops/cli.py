"""Operator commands (``tongban ops``): federation config, enrolment, keys, catalog, peers."""

from __future__ import annotations

import click


@click.group()
def ops() -> None:
    """City operator tools: federation, members, catalog, peers, config."""


@click.group()
def demo() -> None:
    """A small federation on localhost (SQLite) to click through."""


@demo.command("run")
def demo_run() -> None:
    """Start the demo federation (not yet: arrives with the window node)."""
    raise click.ClickException("the demo arrives with the village node and district hub (issue 3)")
