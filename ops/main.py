"""The single ``tongban`` command: ``tongban node …``, ``tongban hub …``, ``tongban ops …``,
``tongban verify`` (a sealed result, offline)."""

from __future__ import annotations

import click

from hub.cli import hub
from node.cli import node
from ops.cli import demo, ops
from ops.verify import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tongban")
def tongban() -> None:
    """tongban (通办): any window accepts any matter; the result comes back to the window."""


tongban.add_command(node)
tongban.add_command(hub)
tongban.add_command(ops)
tongban.add_command(demo)
tongban.add_command(verify)


def main() -> None:
    """Console entry point."""
    tongban()
