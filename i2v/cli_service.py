"""The `service` command(s) of main.py (registered by i2v.cli). Kept in its own module so cli.py stays small."""
from __future__ import annotations


def add_parsers(subparsers) -> None:
    """Register this module's commands on main.py's argparse subparsers (none yet)."""
