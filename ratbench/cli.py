"""The ``ratbench`` command line: a click group whose subcommands load lazily.

Each subcommand lives in its own module under :mod:`ratbench.commands`, so
``ratbench --help`` stays fast and a command's heavy imports (gymnasium,
matplotlib) happen only when it runs. A :class:`~ratbench.errors.RatbenchError`
anywhere becomes one ``Error: ...`` line and exit status 1 (75 for a run another
process is training), no traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from ratbench.errors import RatbenchError

COMMANDS = {
    "accuracy": ("ratbench.commands.accuracy", "accuracy", "Score solvers against a dense float64 SciPy reference."),
    "speed": ("ratbench.commands.speed", "speed", "Time every solver against a vanilla backward and the per-sample route."),
    "train": ("ratbench.commands.train", "train", "Train a policy (MuJoCo, classic control, MinAtar, Atari, DMC) with any solver or a baseline."),
    "plot": ("ratbench.commands.plot", "plot", "Draw learning curves from run directories."),
    "report": ("ratbench.commands.report", "report", "Tables, curves and a verdict per task from run directories (rliable statistics)."),
    "random-score": ("ratbench.commands.random_score", "random_score", "Each task's uniform-random score (the normalisation's lower anchor)."),
    "history": ("ratbench.commands.history", "history", "Speed and accuracy per commit (asv): run past commits, publish offline pages."),
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RatbenchError as err:
            failure = click.ClickException(str(err))
            failure.exit_code = err.exit_code
            raise failure from None
        except BrokenPipeError:  # the reader went away (`ratbench ... | head`): stop quietly, as other CLI tools do
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python's own advice: no second error at exit)
            raise SystemExit(1) from None
        except OSError as err:  # a file-system failure not checked up front (a disk filling up mid-run): one sentence
            where = f" {err.filename!r}" if err.filename else ""
            raise click.ClickException(f"could not write or read{where}: {err.strerror or err}") from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ratbench")
def cli() -> None:
    """ratbench: check and compare natural-policy-gradient solvers (RAT and its rivals)."""


def main() -> None:
    cli()
