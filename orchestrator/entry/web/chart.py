"""Earnings over time as an inline SVG, drawn on the server: no chart library, no script, no inline style (the
page's CSP allows neither), colours come from classes in ``static/app.css``.

Must not import the web framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 16, 16, 32
TICKS = 4


@dataclass(frozen=True, slots=True)
class Earning:
    """An amount received at a time (a paid task's reward, in whole tokens)."""

    at: datetime
    amount: Decimal


def earnings_svg(points: Sequence[Earning], *, unit: str) -> Markup:
    """A step chart of cumulative earnings; an empty-state message when there are none."""
    if not points:
        return Markup("<p class='muted'>No earnings yet: rewards appear here once boards pay for tasks.</p>")
    ordered = sorted(points, key=lambda p: p.at)
    t0, t1 = ordered[0].at.timestamp(), ordered[-1].at.timestamp()
    span = max(t1 - t0, 1.0)
    totals: list[Decimal] = []
    running = Decimal(0)
    for p in ordered:
        running += p.amount
        totals.append(running)
    top = max(totals[-1], Decimal(1))
    inner_w, inner_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(ts: float) -> float:
        return PAD_LEFT + (ts - t0) / span * inner_w

    def y(v: Decimal) -> float:
        return PAD_TOP + inner_h - float(v / top) * inner_h

    path = [f"M{x(t0):.1f},{y(Decimal(0)):.1f}"]
    for p, total in zip(ordered, totals, strict=True):
        px = x(p.at.timestamp())
        path.append(f"H{px:.1f}V{y(total):.1f}")
    path.append(f"H{PAD_LEFT + inner_w:.1f}")
    line = "".join(path)
    area = f"{line}V{y(Decimal(0)):.1f}H{PAD_LEFT:.1f}Z"
    parts = [
        f"<svg class='chart' viewBox='0 0 {WIDTH} {HEIGHT}' role='img' "
        f"aria-label='cumulative earnings: {escape(_fmt(totals[-1]))} {escape(unit)}'>",
    ]
    for i in range(TICKS + 1):
        v = top * i / TICKS
        gy = y(v)
        parts.append(f"<line class='grid' x1='{PAD_LEFT}' x2='{WIDTH - PAD_RIGHT}' y1='{gy:.1f}' y2='{gy:.1f}'/>")
        tick = escape(_fmt(v))
        parts.append(f"<text class='axis' x='{PAD_LEFT - 8}' y='{gy + 4:.1f}' text-anchor='end'>{tick}</text>")
    for ts, anchor, label in _time_labels(ordered[0].at, ordered[-1].at):
        parts.append(f"<text class='axis' x='{x(ts):.1f}' y='{HEIGHT - 8}' text-anchor='{anchor}'>{label}</text>")
    parts.append(f"<path class='area' d='{area}'/><path class='line' d='{line}'/>")
    for p, total in zip(ordered, totals, strict=True):
        parts.append(
            f"<circle class='dot' cx='{x(p.at.timestamp()):.1f}' cy='{y(total):.1f}' r='3'>"
            f"<title>{p.at:%Y-%m-%d %H:%M} +{escape(_fmt(p.amount))} {escape(unit)}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _time_labels(first: datetime, last: datetime) -> list[tuple[float, str, str]]:
    """The x-axis labels at both ends: dates, or a date and times when both ends fall on one day, and a single
    label when both ends are the same minute (two labels at one x were drawn over each other)."""
    if first.strftime("%Y-%m-%d %H:%M") == last.strftime("%Y-%m-%d %H:%M"):
        return [(first.timestamp(), "start", first.strftime("%Y-%m-%d %H:%M"))]
    if first.date() == last.date():
        start, end = first.strftime("%Y-%m-%d %H:%M"), last.strftime("%H:%M")
    else:
        start, end = first.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")
    return [(first.timestamp(), "start", start), (last.timestamp(), "end", end)]


def _fmt(v: Decimal) -> str:
    return f"{v:,.2f}" if v < 1000 else f"{v:,.0f}"
