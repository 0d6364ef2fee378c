"""The `aisdp-log` command line: one module per command, the one-line error contract once."""

from __future__ import annotations

from aisdp_log.cli.main import cli, main

__all__ = ["cli", "main"]
