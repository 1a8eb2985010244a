"""Plain-text tables, for the report and the waterfall phase's lines."""

from __future__ import annotations

from collections.abc import Sequence


def table(header: Sequence[str], body: Sequence[Sequence[str]], align: str) -> list[str]:
    """``header``, a rule and ``body``, in columns as wide as their widest cell; ``align``
    has one character a column, ``<`` for left-aligned, anything else for right."""
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if a == "<" else c.rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ).rstrip()

    return [line(header), "-" * len(line(header)), *(line(r) for r in body)]
