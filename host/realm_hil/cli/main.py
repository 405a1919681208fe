"""The `realm-hil` command: a thin click layer over the library API."""

from __future__ import annotations

import importlib
import sys

import click

from ..errors import MissingDependency, RealmError, missing_dependency
from ..timing.twin_kernel import TwinBuildError
from ..toolchain import ToolchainError

# The project's own error types for problems the user can fix: bad input, a missing or wrong board,
# bitstream or toolchain. Anything else that escapes a command, a plain ValueError included, is a
# bug (in the host, or in the hardware when a stream or the bus misbehaves) and keeps its traceback.
USER_ERRORS = (RealmError, ToolchainError, TwinBuildError)
# click 8.2 raises this for a bare `realm-hil` (it prints the help); older click, as on a PYNQ image's
# Ubuntu 22.04, prints the help and exits without it
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class UserError(click.ClickException):
    """A one-line message and exit code 2: bad input, missing board, bad config."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"realm-hil: error: {self.message}", err=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usage(exc: click.UsageError) -> UserError:
    """click's usage error (Usage:, Try:, Error: lines) as the one line the README promises."""
    message = _one_line(exc.format_message())
    if exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    return UserError(message)


# Each command and the module of this package that defines it. A module is imported only when its command
# runs or a help page lists it, so a command whose extra is not installed here (run and characterize need
# torch, which a PYNQ board does not have) cannot stop the others from starting.
COMMAND_MODULES = {
    "info": "info", "gemm": "gemm", "run": "run", "eval": "eval_tasks", "bench": "bench", "sweep-clock": "sweep",
    "characterize": "characterize", "compare": "compare", "calibrate": "compare", "serve": "serve",
    "resources": "resources", "guardband": "guardband",
}


def _unavailable(name: str, missing: MissingDependency) -> click.Command:
    """Stands in for a command whose module needs a package that is not installed: listed, and one line when run."""

    def refuse() -> None:
        raise UserError(str(missing))

    return click.Command(name, callback=refuse, help=str(missing),
                         short_help=f"(unavailable here: needs {missing.package}, the {missing.extra} extra)",
                         add_help_option=False,
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMAND_MODULES:
            return None
        try:
            module = importlib.import_module(f".{COMMAND_MODULES[name]}", __package__)
        except ModuleNotFoundError as exc:
            missing = missing_dependency(exc, f"realm-hil {name}")
            if missing is None:
                raise
            return _unavailable(name, missing)
        return next(command for command in module.COMMANDS if command.name == name)

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        # the group's own arguments: an unknown command or option of `realm-hil` itself
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NO_ARGS_IS_HELP:
            raise
        except click.UsageError as exc:
            raise _usage(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NO_ARGS_IS_HELP:
            raise
        except click.UsageError as exc:
            raise _usage(exc) from None
        except USER_ERRORS as exc:
            raise UserError(_one_line(str(exc)) or type(exc).__name__) from None
        except ModuleNotFoundError as exc:
            # an optional package a code path imports when it gets there (e.g. torch for --workload llm)
            missing = missing_dependency(exc, f"realm-hil {ctx.invoked_subcommand}")
            if missing is None:
                raise
            raise UserError(str(missing)) from None
        except KeyboardInterrupt:
            click.echo("realm-hil: interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="realm-hil")
def cli() -> None:
    """Hardware-in-the-loop study of timing errors in LLM inference and statistical ABFT."""
