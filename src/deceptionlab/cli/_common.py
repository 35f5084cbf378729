"""What every command shares: the app, the consoles, the one-line failure, table helpers."""

from __future__ import annotations

import os
import re
import sys
import textwrap
import time
from contextlib import contextmanager
from enum import Enum

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Does SGD produce deceptively aligned models? Run the experiments.")
# a terminal's own width; piped, 160 columns (tables stay whole), or $DECEPTIONLAB_WIDTH ($COLUMNS is not read
# off a terminal: test runners and CI set it); ":b:" in a name stays ":b:"
_WIDTH = os.environ.get("DECEPTIONLAB_WIDTH", "")
console = Console(width=None if sys.stdout.isatty() else int(_WIDTH) if _WIDTH.isdigit() and int(_WIDTH) >= 40 else 160, emoji=False)
err_console = Console(stderr=True, emoji=False)


def literal(text: str) -> str:
    """`text` safe to print on one line: characters that are not printable (a newline in a name) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


DEBUG = {"on": False}  # set by --debug: a one-line error also shows the traceback it hides


@app.callback(invoke_without_command=True)
def _options(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback behind a one-line error."),
    trust_folder: bool = typer.Option(
        False, "--trust-folder",
        help="Import the modules of dotted-path worlds from the folders a results folder names (experiment.json, world_folders). "
             "Importing a module runs its code: pass it only for results folders you trust (docs/results-format.md).",
    ),
):
    """Does SGD produce deceptively aligned models? Run the experiments."""
    if trust_folder or "deceptionlab.sweep.store" in sys.modules:  # else the store, not yet imported, starts untrusting (and unimported)
        from ..sweep import store

        store.TRUST_FOLDERS = trust_folder
    if version:
        from .. import __version__

        console.print(f"deceptionlab {__version__}", highlight=False)
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    DEBUG["on"] = debug


def _fail(msg: str) -> None:
    if DEBUG["on"] and sys.exc_info()[0] is not None:
        import traceback

        err_console.print(traceback.format_exc(), markup=False, highlight=False)
    err_console.print(f"[bold red]error:[/] {escape(literal(msg))}", highlight=False, soft_wrap=True)  # "[sweep a=1]" is no markup
    raise typer.Exit(2)


def _check_out(path) -> None:
    """Fail at once, before any work, when `path` (a file or folder to write) cannot be created: a parent of it
    is a file."""
    from pathlib import Path

    if path is None:
        return
    for parent in [Path(path), *Path(path).parents]:
        if parent.exists():
            if parent != Path(path) and not parent.is_dir():
                _fail(f"{path}: cannot be written ({parent} is a file, not a folder)")
            return


class RunsPerSecond(ProgressColumn):
    """Runs per second since the start (chunks finish in bursts, so a recent-window rate jumps)."""

    def render(self, task) -> Text:
        speed = task.completed / task.elapsed if task.elapsed and task.completed else None
        return Text(f"{speed:,.1f} runs/s" if speed else "- runs/s", style="cyan")


class Executor(str, Enum):
    """Where chunks run (sweep.executors.EXECUTORS, written out so that --help imports no executor; a test keeps them equal)."""

    local = "local"
    ray = "ray"


class Penalty(str, Enum):
    """The early-exit compute penalty (models.ponder.PENALTIES; a test keeps them equal)."""

    layers = "layers"
    kl = "kl"


class CountingSource(str, Enum):
    """Where the theory's description lengths come from in a counting result."""

    nngp = "nngp"
    prior = "prior"
    naive = "naive"


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _write_frame(frame, fmt: Format) -> bool:
    """Write `frame` to stdout as CSV or JSON records when `fmt` asks for it (True: done, nothing more
    to print); False for the table format."""
    if fmt is Format.csv:
        sys.stdout.write(frame.to_csv(index=False))
    elif fmt is Format.json:
        sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
    return fmt is not Format.table


def _ci(p: float, lo: float, hi: float) -> str:
    return f"{100 * p:.0f} ({100 * lo:.0f}-{100 * hi:.0f})"


def _num(v, fmt: str = ".0f") -> str:
    return "-" if v is None or v != v else format(v, fmt)


def _table(title: str, columns: list[str], rows: list[list[str]], left: int = 0) -> None:
    """A table; its title and its first `left` columns (names: axis values, conditions, paths) are printed
    literally, never read as markup; the number columns may carry markup ("[bold]...[/]")."""
    table = Table(title=Text(literal(title)), title_justify="left")
    for i, c in enumerate(columns):
        table.add_column(Text(literal(c)), justify="left" if i < left else "right", overflow="fold")
    for r in rows:
        table.add_row(*(Text(literal(c)) if i < left and isinstance(c, str) else c for i, c in enumerate(r)))
    emit(table)


def emit(table: Table) -> None:
    """Print `table` on stdout so that it fits the terminal, no value cut and no header split mid-word. When
    it is wider than the console: every header longer than its column's widest cell is abbreviated to its
    words' initials (situational_awareness: sa), with a legend line below; if it is still too wide, its
    columns are printed in parts, each repeating the key columns (the leading left-justified ones: the condition)."""
    from rich.measure import Measurement

    wide = console.options.update_width(10_000)  # the natural widths, not those squeezed into the console

    def width(t: Table) -> int:
        return Measurement.get(console, wide, t).maximum

    if width(table) <= console.width:
        console.print(table)
        return
    legend, taken = [], set()
    for col in table.columns:
        name = col.header.plain if isinstance(col.header, Text) else str(col.header)
        widest = max((Text.from_markup(c).cell_len if isinstance(c, str) else Measurement.get(console, wide, c).maximum for c in col._cells),
                     default=0)
        if len(name) <= max(widest, 6):
            taken.add(name)
            continue
        words = [w for w in re.split(r"[_\s]+", name) if w and w[0].isalnum()]
        short = "".join(w[0] for w in words) if len(words) > 1 else name[:4] + "."
        while short in taken:
            short += "'"
        taken.add(short)
        col.header = Text(short)
        legend.append(f"{short} = {name}")
    keys = []
    for i, c in enumerate(table.columns):
        if c.justify != "left" or i == len(table.columns) - 1:
            break
        keys.append(i)
    values = [i for i in range(len(table.columns)) if i not in keys]
    parts, part = [], []
    for i in values:  # greedily: as many value columns per part as fit beside the keys
        if part and width(_columns(table, keys + part + [i])) > console.width:
            parts.append(part)
            part = []
        part.append(i)
    parts.append(part)
    for n, part in enumerate(parts):
        t = _columns(table, keys + part)
        if len(parts) > 1 and n:
            t.title = None
        console.print(t)
    if legend:
        console.print(textwrap.fill("  columns: " + "; ".join(legend), console.width, subsequent_indent="    "), markup=False, highlight=False)


def _columns(table: Table, which: list[int]) -> Table:
    """A copy of `table` with only the columns `which` (their headers, cells and settings)."""
    import copy

    t = copy.copy(table)
    t.columns = [copy.copy(table.columns[i]) for i in which]
    for c, i in zip(t.columns, which):
        c._index = which.index(i)
    return t


def _progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), console=err_console, transient=True)




@contextmanager
def stages(command: str):
    """A spinner on stderr naming the stage a multi-stage command is in, with the time it has taken:
    yields `stage(text)`, to be called as each stage begins. Off a terminal each stage is one line, printed
    once the stage is over (so that a command that fails prints only its error)."""
    start = time.monotonic()
    if not err_console.is_terminal:
        # each stage's line is printed when the next begins (or the command ends well), stamped with the time
        # it began: a command that fails prints its one error line and nothing else
        pending: list[str] = []

        def stage(text: str) -> None:
            for line in pending:
                err_console.print(line, highlight=False, soft_wrap=True)
            pending[:] = [f"{command}: {literal(text)} ({time.monotonic() - start:.0f} s)"]

        yield stage
        for line in pending:
            err_console.print(line, highlight=False, soft_wrap=True)
        return
    with err_console.status(f"{command}: starting") as status:
        def stage(text: str) -> None:
            status.update(f"[bold]{command}[/]: {escape(text)} [dim]({time.monotonic() - start:.0f} s so far)[/]")

        yield stage
