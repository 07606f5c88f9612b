"""Server-side inline SVG charts (no JavaScript, no external asset)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup


def hourly_svg(values: Sequence[int], title: str, desc: str) -> Markup:
    """A 24-bar chart of ``values`` (index = Vietnam-time hour), with an accessible title."""
    width, height, pad_l, pad_b, pad_t = 720, 220, 40, 24, 16
    top = max(max(values, default=0), 1)
    slot = (width - pad_l - 8) / max(len(values), 1)
    plot_h = height - pad_b - pad_t
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
             f'<title id="chart-title">{escape(title)}</title>',
             f'<desc id="chart-desc">{escape(desc)}</desc>',
             f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - 4}" y2="{height - pad_b}" '
             'stroke="#555" stroke-width="1"/>',
             f'<text x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end" font-size="12" '
             f'fill="#333">{top}</text>',
             f'<text x="{pad_l - 6}" y="{height - pad_b}" text-anchor="end" font-size="12" '
             'fill="#333">0</text>']
    for hour, value in enumerate(values):
        h = plot_h * value / top
        x = pad_l + hour * slot + 2
        y = height - pad_b - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot - 4:.1f}" height="{h:.1f}" '
                     f'fill="#0b5cad"><title>{hour:02d}:00 — {value}</title></rect>')
        if hour % 3 == 0:
            parts.append(f'<text x="{x + (slot - 4) / 2:.1f}" y="{height - 6}" '
                         f'text-anchor="middle" font-size="12" fill="#333">{hour:02d}h</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def bar_svg(fraction: float, label: str) -> Markup:
    """A horizontal bar for a share in [0, 1] (occupancy, method split)."""
    frac = min(max(fraction, 0.0), 1.0)
    colour = "#b00020" if frac >= 0.9 else "#0b5cad"
    return Markup(  # noqa: S704 - the label is escaped
        f'<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="0" y="0" width="100" height="10" fill="#e3e8ef"/>'
        f'<rect x="0" y="0" width="{frac * 100:.1f}" height="10" fill="{colour}"/></svg>')
