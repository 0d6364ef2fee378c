"""The one-line error contract: whatever stops a command is one line on stderr and an exit
code, never a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import click

from aisdp_log.errors import AisdpLogError


def one_line_errors(run: Callable[[], object]) -> None:
    """Run a command (`run`: click's `main` with standalone_mode=False); anything that stops
    it becomes one line on stderr and exit code 2 (130 when interrupted)."""
    try:
        run()
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # One line, like every other error: what is wrong and where help is.
        command = exc.ctx.command_path if exc.ctx else "aisdp-log"
        click.echo(f"{command}: error: {exc.format_message()} (see '{command} --help')",
                   err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"aisdp-log: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aisdp-log: aborted", err=True)
        sys.exit(130)
    except AisdpLogError as exc:
        click.echo(f"aisdp-log: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("aisdp-log: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:  # disk full, quota, I/O error where no module named the file
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"aisdp-log: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - the contract is one line, never a traceback
        if os.environ.get("AISDP_LOG_DEBUG"):
            raise
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        click.echo(f"aisdp-log: internal error: {type(exc).__name__}: {reason} "
                   "(set AISDP_LOG_DEBUG=1 for the traceback and please report it)", err=True)
        sys.exit(2)
