"""One SVG bar chart of every benchmark's ratios, drawn from benchmarks/results/*.json.

Plain SVG text, no plotting library: each benchmark is a group of bars, each bar a ratio from
that benchmark's ``chart`` list, on a log scale centred on 1.0 (bars grow left of the line
below 1.0, right of it above). What a ratio means (lower or higher is better) is in the
group's title, which is the benchmark's own ``chart_title``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

WIDTH = 760
LABEL_W = 300  # label column
VALUE_W = 60  # value text after the plot area
ROW_H = 20
TITLE_H = 26
PAD = 12
BELOW, ABOVE = "#4c78a8", "#f58518"  # bars under / over 1.0


def load(results: Path) -> list[dict[str, Any]]:
    """Every result with a chart, in file-name order (stable between runs)."""
    out = []
    for path in sorted(results.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("chart"):
            out.append(data)
    return out


def _domain(values: list[float]) -> tuple[float, float]:
    """Powers of ten around the values, always including 0.1..10."""
    finite = [v for v in values if v == v and v > 0]
    low = min([0.1, *finite])
    high = max([10.0, *finite])
    return 10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high))


def svg(results: list[dict[str, Any]]) -> str:
    """The chart as an SVG document (text)."""
    values = [float(v) for r in results for _, v in r["chart"] if v is not None]
    low, high = _domain(values)
    left, right = LABEL_W, WIDTH - VALUE_W
    span = math.log10(high) - math.log10(low)

    def x(value: float) -> float:
        return left + (math.log10(value) - math.log10(low)) / span * (right - left)

    rows = sum(len(r["chart"]) for r in results)
    height = PAD * 2 + ROW_H + len(results) * TITLE_H + rows * ROW_H + 10
    one = x(1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12" '
        'role="img" aria-label="Benchmark ratios">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
    ]
    y = PAD + ROW_H
    # The axis: a tick per power of ten, on top.
    power = low
    while power <= high * 1.0001:
        tx = x(power)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{y - 4}" x2="{tx:.1f}" y2="{height - PAD}" '
            'stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{tx:.1f}" y="{y - 8}" text-anchor="middle" fill="#555">{power:g}</text>'
        )
        power *= 10
    parts.append(
        f'<text x="{PAD}" y="{y - 8}" fill="#555">ratio (log scale; the line marks 1.0)</text>'
    )
    for result in results:
        y += TITLE_H
        title = f"{result['name']}: {result.get('chart_title') or result.get('title', '')}"
        parts.append(f'<text x="{PAD}" y="{y - 8}" font-weight="bold">{escape(title)}</text>')
        for label, value in result["chart"]:
            mid = y + ROW_H / 2
            parts.append(
                f'<text x="{LABEL_W - 8}" y="{mid + 4:.1f}" text-anchor="end">'
                f"{escape(label)}</text>"
            )
            if value is None or value != value or value <= 0:
                text, end = "n/a", one
            else:
                vx = min(max(x(value), left), right)
                start, stop = sorted((one, vx))
                colour = BELOW if value < 1 else ABOVE
                parts.append(
                    f'<rect x="{start:.1f}" y="{y + 3}" width="{max(stop - start, 1):.1f}" '
                    f'height="{ROW_H - 6}" fill="{colour}"/>'
                )
                text, end = f"{value:.2f}", max(vx, one)
            parts.append(f'<text x="{end + 4:.1f}" y="{mid + 4:.1f}" fill="#333">{text}</text>')
            y += ROW_H
    parts.append(
        f'<line x1="{one:.1f}" y1="{PAD + ROW_H - 4}" x2="{one:.1f}" y2="{height - PAD}" '
        'stroke="#222" stroke-width="1.5"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write(results: Path, dest: Path) -> Path | None:
    """Redraw ``dest`` from every result in ``results``; None when no result has a chart."""
    loaded = load(results)
    if not loaded:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(svg(loaded))
    return dest
