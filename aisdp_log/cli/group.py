"""How `aisdp-log`'s groups behave: commands listed in the order a team uses them, each loaded
only when it runs (or `--help` lists it), and the root group run under the one-line error
contract however it is called."""

from __future__ import annotations

import functools
import importlib

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


#: The root group's commands: name -> (module in cli/, the click command's name there).
ROOT_COMMANDS = {
    "demo": ("demo", "demo"), "template": ("template", "template"),
    "validate": ("validate", "validate"), "hash": ("hash", "hash_command"),
    "add": ("add", "add"), "rerun": ("rerun", "rerun"), "review": ("review", "review"),
    "verify": ("verify", "verify_command"), "bundle": ("bundle", "bundle_command"),
    "export": ("export", "export"), "codes": ("codes", "codes"),
}


class RootGroup(OrderedGroup):
    """`aisdp-log` itself. A command's module loads when that command runs (`--help` loads
    them all for their one-line help): `aisdp-log validate` imports none of the others, a few
    ms of a 100 ms run (benchmarks/bench_validate.py). Its `main` (the entry point,
    `python -m aisdp_log`, click's CliRunner) runs a command under the one-line error
    contract, as `aisdp-log`."""

    def list_commands(self, ctx):
        order = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(set(self.commands) | set(ROOT_COMMANDS),
                      key=lambda name: (order.get(name, len(order)), name))

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands and cmd_name in ROOT_COMMANDS:
            module, attribute = ROOT_COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f"aisdp_log.cli.{module}"), attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:  # the caller handles click's exceptions itself
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        one_line_errors(functools.partial(super().main, args=args, prog_name="aisdp-log",
                                          complete_var=complete_var, standalone_mode=False,
                                          **extra))
        return None
