"""The one table the suite prints: a row per scenario, system and metric, with the ratio of
each value to onair's in the same scenario and metric (onair's own rows read 1.00)."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.common import Row


def ratio(row: Row, rows: Sequence[Row]) -> str:
    """`row.value / onair's value` as text; blank where there is nothing to compare."""
    if not isinstance(row.value, int | float) or not row.unit:
        return ""
    for other in rows:
        if (
            other.scenario == row.scenario
            and other.metric == row.metric
            and other.system == "onair"
            and isinstance(other.value, int | float)
        ):
            if other.value == 0:
                return "" if row.value else "1.00"
            return f"{row.value / other.value:.2f}"
    return ""


def value_text(row: Row) -> str:
    if isinstance(row.value, str):
        return row.value
    if isinstance(row.value, int) or float(row.value).is_integer() and row.unit != "ms":
        return f"{row.value:,.0f}{(' ' + row.unit) if row.unit not in ('', '/s') else ''}"
    if row.value != row.value:  # NaN
        return "n/a"
    digits = 1 if abs(row.value) >= 10 or row.unit != "ms" else 2
    unit = "" if row.unit in ("", "/s") else f" {row.unit}"
    return f"{row.value:,.{digits}f}{unit}"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table (readable as plain text too)."""
    header = ("scenario", "system", "metric", "value", "ratio vs onair", "note")
    lines = [(r.scenario, r.system, r.metric, value_text(r), ratio(r, rows), r.note) for r in rows]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), separator, *(line(cells) for cells in lines)])
