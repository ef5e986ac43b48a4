"""How the listing commands (``status``, ``tasks``, ``agents``, ``rewards``, ``dao tasks``, ``review list``,
``wallet list``) show rows: a table for people, ``--wide`` for full values, ``--json`` for scripts.

The table fits an 80-column terminal: addresses, hashes and CIDs are shortened (``0x2e29…3971``,
``bafy…ik4q2d``); identifier, state and amount columns never wrap (``no_wrap``); only free-text columns (titles,
reasons) wrap, at spaces, and a word longer than its column is cut with ``…``, never broken across lines.
Commands drop their least useful columns below ``NARROW`` columns. ``--wide`` prints full identifiers and every
column at the table's natural width. ``--json`` prints one JSON document on stdout: stable field names,
amounts in base units (wei) as strings of integers, so no JSON parser rounds them (README, "JSON output").

Must not import the service, the chain or the web app: rich and typer only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.entry.terminal import literal

#: Below this many columns a listing drops its least useful columns.
NARROW = 100
#: The width ``--wide`` renders at: wide enough that no cell is cut.
WIDE_WIDTH = 1000

WideOption = Annotated[
    bool,
    typer.Option(
        "--wide", help="Full addresses, hashes and CIDs, and every column (lines may be wider than the terminal)."
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="One JSON document on stdout for scripts; amounts in base units, as strings."),
]

ColumnKind = Literal["id", "text", "number"]


def short(value: str | None, *, wide: bool = False) -> str:
    """An address or hash as ``0x2e29…3971``, a CID as ``bafy…ik4q2d``: enough to tell them apart in a table
    (``--wide`` and ``--json`` show them whole). ``None`` is ``-``. Not markup-escaped: see ``cell``."""
    if not value:
        return "-"
    if wide:
        return value
    if value.startswith("0x") and len(value) > 12:
        return f"{value[:6]}…{value[-4:]}"
    if len(value) > 14:
        return f"{value[:4]}…{value[-6:]}"
    return value


def cell(value: str | None, *, wide: bool = False) -> str:
    """``short(value)`` ready for a rich table (identifiers come from boards and nodes: never markup)."""
    return literal(short(value, wide=wide))


def table(title: str, columns: Iterable[tuple[str, ColumnKind]], *, wide: bool = False) -> Table:
    """A table whose ``id`` and ``number`` columns never wrap and whose ``text`` columns wrap at spaces only."""
    out = Table(title=title)
    for header, kind in columns:
        if kind == "text":
            out.add_column(header, overflow="ellipsis", min_width=8)
        else:
            out.add_column(header, no_wrap=True, justify="right" if kind == "number" else "left")
    return out


def is_narrow(console: Console, *, wide: bool) -> bool:
    """Whether a listing should drop its optional columns."""
    return not wide and console.width < NARROW


def show(console: Console, renderable: Any, *, wide: bool) -> None:
    """Print a table: at the terminal's width, or at its natural width with ``--wide``."""
    if wide:
        Console(width=WIDE_WIDTH, highlight=False, no_color=console.no_color).print(renderable, crop=False)
    else:
        console.print(renderable)


def emit_json(data: object) -> None:
    """The ``--json`` document, on plain stdout (no colour, no wrapping)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
