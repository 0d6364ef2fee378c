"""How the `aisdp-log` group behaves: commands listed in the order a team uses them, each loaded
only when it runs (or `--help` lists it), run under the one-line error contract however it is
called."""

from __future__ import annotations

import functools
import importlib

import click

from aisdp_log.cli.errors import one_line_errors

#: The root group's commands, in the order `--help` lists them (the order a team uses them):
#: name -> (module in cli/, the click command's name there).
ROOT_COMMANDS = {
    "demo": ("demo", "demo"), "template": ("template", "template"),
    "validate": ("validate", "validate"), "hash": ("hash", "hash_command"),
    "add": ("add", "add"), "rerun": ("rerun", "rerun"), "review": ("review", "review"),
    "verify": ("verify", "verify_command"), "bundle": ("bundle", "bundle_command"),
    "export": ("export", "export"), "codes": ("codes", "codes"),
}


class RootGroup(click.Group):
    """`aisdp-log` itself. A command's module loads when that command runs (`--help` loads
    them all for their one-line help): `aisdp-log validate` imports none of the others, a few
    ms of a 100 ms run (benchmarks/bench_validate.py). Its `main` (the entry point,
    `python -m aisdp_log`, click's CliRunner) runs a command under the one-line error
    contract, as `aisdp-log`."""

    def list_commands(self, ctx):
        return [*ROOT_COMMANDS, *sorted(set(self.commands) - set(ROOT_COMMANDS))]

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
