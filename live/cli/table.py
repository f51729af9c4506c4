"""Readable tables on the terminal (commands and benchmarks)."""

from __future__ import annotations


def print_table(title: str, rows: list[dict], columns: list[tuple[str, str]], width: int | None = None) -> None:
    """columns: (key, header). Floats get 3 decimals. Width: given, else the terminal's (long cells
    wrap); piped into a file or a test, 200 columns, so a saved table keeps one row per line."""
    import sys

    from rich.console import Console
    from rich.table import Table
    table = Table(title=title)
    for _, header in columns:
        table.add_column(header, justify="right")
    for row in rows:
        cells = []
        for key, _ in columns:
            v = row.get(key, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        table.add_row(*cells)
    if width is None and not sys.stdout.isatty():
        width = 200
    Console(width=width).print(table)
