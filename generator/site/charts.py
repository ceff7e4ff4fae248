"""Charts for the docs site, drawn at build time as inline SVG (no script, no library).

Colours come from CSS classes (``c0`` … ``c10`` in ``site/static/site.css``), so the markup
carries no inline style and the pages keep a strict Content-Security-Policy. Every bar has a
``<title>`` (a tooltip and its accessible name); coordinates are rounded to one decimal so the
same numbers always give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 720
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 10, 26
ROW = 22


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css: str  # the colour class


def nice_ceiling(value: int) -> tuple[int, int]:
    """(top of the axis, tick step): 1-2-5 steps, about four ticks."""
    if value <= 0:
        return 1, 1
    step = 1
    while True:
        for mult in (1, 2, 5):
            candidate = step * mult
            if candidate * 4 >= value:
                top = -(-value // candidate) * candidate
                return top, candidate
        step *= 10


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    head = (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">'
    )
    return Markup(head + "".join(body) + "</svg>")


def _y_axis(top: int, step: int, plot_h: float) -> list[str]:
    out = []
    for tick in range(0, top + 1, step):
        y = TOP + plot_h - plot_h * tick / top
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(y)}" y2="{_n(y)}"/>'
        )
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{_n(y + 4)}" text-anchor="end">{tick:,}</text>'
        )
    return out


def stacked_bars(
    days: Sequence[str],
    series: Sequence[Series],
    values: Mapping[str, Mapping[str, int]],
    label: str,
) -> Markup:
    """One stacked bar per day (oldest left); ``values[day][series name]``."""
    totals = [sum(values.get(d, {}).values()) for d in days]
    top, step = nice_ceiling(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(days))
    body = _y_axis(top, step, plot_h)
    for i, day in enumerate(days):
        x = LEFT + i * slot + slot * 0.1
        base: float = TOP + plot_h
        for s in series:
            count = values.get(day, {}).get(s.name, 0)
            if not count:
                continue
            h = plot_h * count / top
            base -= h
            body.append(
                f'<rect class="{s.css}" x="{_n(x)}" y="{_n(base)}" '
                f'width="{_n(slot * 0.8)}" height="{_n(h)}">'
                f"<title>{escape(day)} · {escape(s.name)}: {count:,}</title></rect>"
            )
        if i % 5 == (len(days) - 1) % 5:
            body.append(
                f'<text class="tick" x="{_n(x + slot * 0.4)}" y="{HEIGHT - 8}" '
                f'text-anchor="middle">{escape(day[5:])}</text>'
            )
    return _svg(WIDTH, HEIGHT, label, body)


def horizontal_bars(rows: Sequence[tuple[str, int]], label: str, css: str = "c0") -> Markup:
    """One bar per (name, count) row, in the given order."""
    height = TOP + BOTTOM + ROW * max(1, len(rows))
    label_w = 130
    plot_w = WIDTH - label_w - RIGHT - 60
    top = max((n for _, n in rows), default=0) or 1
    body = []
    for i, (name, count) in enumerate(rows):
        y = TOP + i * ROW
        w = plot_w * count / top
        body.append(
            f'<text class="tick" x="{label_w - 8}" y="{y + 15}" '
            f'text-anchor="end">{escape(name)}</text>'
        )
        body.append(
            f'<rect class="{css}" x="{label_w}" y="{y + 3}" width="{_n(w)}" '
            f'height="{ROW - 6}"><title>{escape(name)}: {count:,}</title></rect>'
        )
        body.append(f'<text class="tick" x="{_n(label_w + w + 6)}" y="{y + 15}">{count:,}</text>')
    return _svg(WIDTH, height, label, body)
