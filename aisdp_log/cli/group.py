"""How `aisdp-log`'s groups behave: commands listed in the order a team uses them, and the
root group run under the one-line error contract however it is called."""

from __future__ import annotations

import functools

import click

from aisdp_log.cli.errors import one_line_errors

#: The order `--help` lists commands in: the order a team uses them.
COMMAND_ORDER = ("demo", "template", "validate", "hash", "add", "rerun", "review", "verify",
                 "bundle", "export", "codes")


class OrderedGroup(click.Group):
    """A group whose `--help` lists its commands in COMMAND_ORDER, any others after them."""

    def list_commands(self, ctx):
        order = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(self.commands, key=lambda name: (order.get(name, len(order)), name))


class RootGroup(OrderedGroup):
    """`aisdp-log` itself: its `main` (the entry point, `python -m aisdp_log`, click's
    CliRunner) runs a command under the one-line error contract, as `aisdp-log`."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:  # the caller handles click's exceptions itself
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        one_line_errors(functools.partial(super().main, args=args, prog_name="aisdp-log",
                                          complete_var=complete_var, standalone_mode=False,
                                          **extra))
        return None
