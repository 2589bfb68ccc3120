"""The session's pressure over time as SVG, drawn on the server: no chart library in the browser.

Steps are bands (roll and release in two shades) with their pressure limit as a dashed
line; the per-second mean pressure is a line over the band of its peaks; strokes are
ticks along the bottom and reps dots on the curve. The markup is built from numbers only,
and every text is escaped.
"""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT = 360, 220
LEFT, RIGHT, TOP, BOTTOM = 34, 6, 10, 26


def pressure_svg(steps: list[dict], events: list[dict], pressure: list[dict], duration_s: float | None) -> str:
    end = max([duration_s or 0.0, 1.0] + [p["t"] for p in pressure] + [s["ended_s"] or 0.0 for s in steps])
    top = max([10.0] + [p["peak_kpa"] or 0.0 for p in pressure] + [s["pressure_limit_kpa"] for s in steps]) * 1.1
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return round(LEFT + w * t / end, 1)

    def y(kpa: float) -> float:
        return round(TOP + h * (1.0 - kpa / top), 1)

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="pressure over the session, {len(steps)} steps">']
    for s in steps:
        if s["started_s"] is None or s["ended_s"] is None:
            continue
        a, b = x(s["started_s"]), x(s["ended_s"])
        parts.append(f'<rect class="band {escape(s["kind"])}" x="{a}" y="{TOP}" width="{max(b - a, 0.5)}" height="{h}">'
                     f'<title>{s["position"]}. {escape(s["name"])}</title></rect>')
        limit = y(s["pressure_limit_kpa"])
        parts.append(f'<line class="limit" x1="{a}" x2="{b}" y1="{limit}" y2="{limit}"/>')
        parts.append(f'<text class="steplabel" x="{round((a + b) / 2, 1)}" y="{TOP + 10}">{s["position"]}</text>')
    means = [(p["t"], p["mean_kpa"]) for p in pressure if p["mean_kpa"] is not None]
    peaks = [(p["t"], p["peak_kpa"]) for p in pressure if p["peak_kpa"] is not None]
    if peaks and means:
        outline = [f"{x(t)},{y(k)}" for t, k in peaks] + [f"{x(t)},{y(k)}" for t, k in reversed(means)]
        parts.append(f'<polygon class="peak" points="{" ".join(outline)}"/>')
    if means:
        parts.append(f'<polyline class="mean" points="{" ".join(f"{x(t)},{y(k)}" for t, k in means)}"/>')
    for e in events:
        if e["kind"] == "stroke":
            parts.append(f'<line class="stroke" x1="{x(e["t"])}" x2="{x(e["t"])}" y1="{TOP + h}" y2="{TOP + h - 6}"/>')
        elif e["kind"] == "rep":
            parts.append(f'<circle class="rep" cx="{x(e["t"])}" cy="{y(_at(means, e["t"]))}" r="2"/>')
    parts.append(_axes(end, top, x, y))
    parts.append("</svg>")
    return "".join(parts)


def _at(series: list[tuple[float, float]], t: float) -> float:
    """The mean pressure at the second nearest t (0 with none)."""
    if not series:
        return 0.0
    return min(series, key=lambda p: abs(p[0] - t))[1]


def _axes(end: float, top: float, x, y) -> str:
    parts = [f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0)}" y2="{y(0)}"/>']
    for kpa in _ticks(top / 1.1):
        parts.append(f'<text class="tick" x="{LEFT - 4}" y="{y(kpa) + 3}" text-anchor="end">{kpa:g}</text>')
    step_min = max(1, round(end / 60 / 5))
    for minute in range(0, int(end // 60) + 1, step_min):
        parts.append(f'<text class="tick" x="{x(minute * 60)}" y="{HEIGHT - 12}" text-anchor="middle">{minute}</text>')
    parts.append(f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 1}" text-anchor="end">minutes</text>')
    parts.append(f'<text class="tick" x="2" y="{TOP + 2}">kPa</text>')
    return "".join(parts)


def _ticks(top: float) -> list[float]:
    step = next(s for s in (5, 10, 20, 50, 100, 200, 500) if top / s <= 5)
    return [k * step for k in range(int(top // step) + 1)]
