"""CSV cells that a spreadsheet cannot run: the guard of every CSV file removalx writes.

A cell whose text begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read
as a formula by Excel, LibreOffice and Google Sheets (a clip named ``=HYPERLINK("...").gif``
becomes a live link). Following the OWASP guidance on CSV injection
(https://owasp.org/www-community/attacks/CSV_Injection), such a *text* cell is written with a
leading single quote, which spreadsheets show as text.

Numbers stay numbers: an ``int`` or ``float`` cell (``-0.5``, ``-inf``) is written as Python
writes it, unquoted, because a numeric column must stay numeric for the programs that read the
export (pandas, R, spreadsheets), and a number is never a formula. This is removalx's choice
where OWASP would quote every cell with such a first character; only strings are guarded.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row", "write_csv_rows"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text starting with one of :data:`FORMULA_STARTS`.

    Numbers (``int``, ``float``, but not ``bool``-like strings) and ``None`` are returned
    unchanged; any other object is guarded by its ``str``.
    """
    if value is None or isinstance(value, (int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_row(row: Iterable[Any]) -> list[Any]:
    """Every cell of ``row`` through :func:`safe_cell`."""
    return [safe_cell(v) for v in row]


def write_csv_rows(
    out: Any,
    header: Iterable[Any],
    rows: Iterable[Iterable[Any] | Mapping[str, Any]],
    lineterminator: str = "\n",
) -> None:
    """Write ``header`` and ``rows`` (sequences, or mappings keyed by the header) to ``out`` as CSV.

    Every cell, header included, goes through :func:`safe_cell`.
    """
    cols = list(header)
    w = csv.writer(out, lineterminator=lineterminator)
    w.writerow(safe_row(cols))
    for row in rows:
        cells = [row.get(c) for c in cols] if isinstance(row, Mapping) else row
        w.writerow(safe_row(cells))
