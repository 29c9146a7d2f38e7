"""Draw a finding's :class:`Chart` as inline SVG with matplotlib (imported on first use).

Output is deterministic for the same chart (fixed hash salt, no date metadata), so a
report renders byte-identically twice. It uses a bare ``Figure`` rather than pyplot, so
the caller's matplotlib backend and global settings are left alone.
"""

from __future__ import annotations

import io

from bastion.report.finding import Chart

__all__ = ["chart_svg"]

_COLORS = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2")


def chart_svg(chart: Chart) -> str:
    """The chart as an ``<svg>`` element (no XML prologue), titled for screen readers."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.2), dpi=100)
    ax = fig.add_subplot()
    with rc_context({"svg.hashsalt": "bastion"}):
        n = len(chart.series)
        for i, s in enumerate(chart.series):
            color = _COLORS[i % len(_COLORS)]
            if chart.kind == "line":
                ax.plot(s.x, s.y, marker="o", markersize=3, label=s.name, color=color)
            elif chart.kind == "hist":
                ax.hist(s.y, bins=30, alpha=0.6 if n > 1 else 0.9, label=s.name, color=color)
            else:
                width = 0.8 / max(n, 1)
                positions = [j + (i - (n - 1) / 2) * width for j in range(len(s.y))]
                ax.bar(positions, s.y, width=width, label=s.name, color=color)
                ax.set_xticks(range(len(s.x)), [str(v) for v in s.x],
                              rotation=45 if len(s.x) > 8 else 0)
        ax.set_title(chart.title, fontsize=10)
        ax.set_xlabel(chart.x_label)
        ax.set_ylabel(chart.y_label)
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        if n > 1:
            ax.legend(fontsize=8, frameon=False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]
