"""Readable tables on the terminal (commands and benchmarks)."""

from __future__ import annotations


def print_table(title: str, rows: list[dict], columns: list[tuple[str, str]], width: int = 160) -> None:
    """columns: (key, header). Floats get 3 decimals."""
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
    Console(width=width).print(table)
