"""Images of the session log: one session's pressure over time, and a report over days.

matplotlib is an optional extra (``pip install 'kneeroll[plot]'``): it is
imported inside these functions only, with the Agg backend (no display needed,
so it works on a headless Pi and in a service).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

from .atomic import write_atomically
from .errors import KneerollError

ROLL_BAND = "#d9ecd9"
RELEASE_BAND = "#d6e4f2"
LIMIT_COLOUR = "#c0392b"
PRESSURE_COLOUR = "#1f4e79"
STROKE_COLOUR = "#2e7d32"
REP_COLOUR = "#e67e22"


def require_matplotlib():
    """matplotlib's pyplot on the Agg backend, or an error that says how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise KneerollError("plots need matplotlib, which is not installed",
                            "pip install 'kneeroll[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _minutes(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def plot_session(out: Path, session: dict, steps: list[dict], events: list[dict], pressure: list[dict]) -> Path:
    """Pressure over the session, the steps as labelled bands with their limits, strokes and reps marked."""
    plt = require_matplotlib()
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    t = np.array([p["t"] for p in pressure], dtype=float)
    mean = np.array([np.nan if p["mean_kpa"] is None else p["mean_kpa"] for p in pressure], dtype=float)
    peak = np.array([np.nan if p["peak_kpa"] is None else p["peak_kpa"] for p in pressure], dtype=float)
    end = max([float(t.max()) if len(t) else 0.0, session.get("duration_s") or 0.0]
              + [s["ended_s"] for s in steps if s["ended_s"] is not None] + [1.0])
    top_data = max([float(np.nanmax(peak)) if len(peak) and np.isfinite(peak).any() else 0.0]
                   + [s["pressure_limit_kpa"] for s in steps] + [10.0])
    top = top_data * 1.32  # room above for the step labels

    fig, ax = plt.subplots(figsize=(12, 5.6), dpi=110)
    for s in steps:
        if s["started_s"] is None or s["ended_s"] is None:
            continue
        a, b = s["started_s"], s["ended_s"]
        ax.axvspan(a, b, color=ROLL_BAND if s["kind"] == "roll" else RELEASE_BAND, zorder=0, lw=0)
        ax.hlines(s["pressure_limit_kpa"], a, b, colors=LIMIT_COLOUR, linestyles="--", lw=1.4, zorder=2)
        state = {"done": "", "skipped": " (skipped)", "not_done": " (not done)"}.get(s.get("state", ""), "")
        ax.text(a + (b - a) / 2, top * 0.985, f"{s['position']}. {s['name']}{state}", rotation=90, ha="center",
                va="top", fontsize=8, color="#222222", clip_on=True, zorder=7,
                bbox={"facecolor": ROLL_BAND if s["kind"] == "roll" else RELEASE_BAND, "edgecolor": "none", "pad": 1.5})
    if len(t):
        ax.fill_between(t, mean, peak, color=PRESSURE_COLOUR, alpha=0.18, lw=0, zorder=3)
        ax.plot(t, mean, color=PRESSURE_COLOUR, lw=1.6, zorder=4)

    def on_curve(times):
        if not len(t):
            return np.zeros(len(times))
        return np.interp(times, t, np.nan_to_num(mean))

    strokes = np.array([e["t"] for e in events if e["kind"] == "stroke"], dtype=float)
    reps = np.array([e["t"] for e in events if e["kind"] == "rep"], dtype=float)
    warnings = [e for e in events if e["kind"] == "warning"]
    faults = [e for e in events if e["kind"] in ("fault", "gap") and e["t"] >= 0]
    if len(strokes):
        ax.plot(strokes, on_curve(strokes), "v", color=STROKE_COLOUR, ms=6, mec="white", mew=0.6, zorder=5)
    if len(reps):
        ax.plot(reps, on_curve(reps), "o", color=REP_COLOUR, ms=6, mec="white", mew=0.6, zorder=5)
    if warnings:
        wt = np.array([e["t"] for e in warnings], dtype=float)
        wv = np.array([e["value"] if e["value"] is not None else on_curve([e["t"]])[0] for e in warnings], dtype=float)
        ax.plot(wt, wv, "X", color=LIMIT_COLOUR, ms=9, mec="white", mew=0.8, zorder=6)
    for e in faults:
        ax.axvline(e["t"], color="#555555", ls=":", lw=1.2, zorder=1)

    ax.set_xlim(0, end * 1.01)
    ax.set_ylim(0, top)
    ax.set_xlabel("time since the session started (s)")
    ax.set_ylabel("pressure on the leg (kPa)")
    ax.grid(axis="y", color="#dddddd", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    title = (f"Session {session['id']} - {session.get('date', '')} {session.get('time', '')}, {session['leg']} leg, "
             f"{session['outcome'].replace('_', ' ')}, {session['steps_done']}/{session['steps_total']} steps, "
             f"{_minutes(session.get('duration_s') or end)}")
    ax.set_title(title, fontsize=11, loc="left")

    handles = [
        Line2D([], [], color=PRESSURE_COLOUR, lw=1.6, label="mean pressure (per second)"),
        Patch(color=PRESSURE_COLOUR, alpha=0.18, label="up to the peak in that second"),
        Line2D([], [], color=LIMIT_COLOUR, ls="--", lw=1.4, label="step's pressure limit"),
        Line2D([], [], ls="", marker="v", color=STROKE_COLOUR, label=f"stroke ({len(strokes)})"),
        Line2D([], [], ls="", marker="o", color=REP_COLOUR, label=f"rep ({len(reps)})"),
        Patch(color=ROLL_BAND, label="rolling step"),
        Patch(color=RELEASE_BAND, label="trigger-point step"),
    ]
    if warnings:
        handles.append(Line2D([], [], ls="", marker="X", color=LIMIT_COLOUR, label=f"pressure warning ({len(warnings)})"))
    if faults:
        handles.append(Line2D([], [], color="#555555", ls=":", label="sensor fault or gap"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8.5, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    _save(fig, out)
    plt.close(fig)
    return out


def plot_report(out: Path, report: dict) -> Path:
    """Adherence as a calendar (sessions a day against the target) and per-step trends."""
    plt = require_matplotlib()
    import numpy as np
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.dates import DateFormatter
    from matplotlib.patches import Patch

    per_day = report["sessions_per_day"]
    first, last = date.fromisoformat(report["from"]), date.fromisoformat(report["to"])
    counts = {date.fromisoformat(d["date"]): d["sessions"] for d in report["adherence"]}
    fig = plt.figure(figsize=(12, 12), dpi=110)
    grid = fig.add_gridspec(4, 1, height_ratios=[1.25, 1.5, 1.2, 1.2], hspace=0.55)

    # calendar: a column a week (Monday first), a row a weekday
    cal = fig.add_subplot(grid[0])
    start = first - timedelta(days=first.weekday())
    weeks = (last - start).days // 7 + 1
    cells = np.full((7, weeks), np.nan)
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        cells[day.weekday(), (day - start).days // 7] = min(counts.get(day, 0), per_day)
    if per_day <= 3:
        colours = ["#eeeeee", *("#f5c16c", "#a8d5a2", "#2e7d32")[-per_day:]]
    else:
        greens = plt.get_cmap("Greens")
        colours = ["#eeeeee", *(greens(0.3 + 0.6 * n / per_day) for n in range(1, per_day + 1))]
    cmap = ListedColormap(colours).with_extremes(bad="white")
    cal.imshow(np.ma.masked_invalid(cells), cmap=cmap, norm=BoundaryNorm(np.arange(-0.5, per_day + 1), per_day + 1),
               aspect="auto", interpolation="nearest")
    if weeks <= 20:
        for w in range(weeks):
            for d in range(7):
                day = start + timedelta(days=7 * w + d)
                if first <= day <= last:
                    # the first of a month by its name, so the calendar reads without the axis
                    cal.text(w, d, day.strftime("%b") if day.day == 1 else str(day.day), ha="center", va="center",
                             fontsize=7,
                             color="white" if counts.get(day, 0) >= per_day else "#333333")
    cal.set_yticks(range(7), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], fontsize=8)
    step = max(1, weeks // 12)
    cal.set_xticks(range(0, weeks, step), [(start + timedelta(weeks=w)).strftime("%d %b") for w in range(0, weeks, step)],
                   fontsize=8)
    cal.set_xlabel("week starting")
    cal.tick_params(length=0)
    for spine in cal.spines.values():
        spine.set_visible(False)
    cal.set_xticks(np.arange(-0.5, weeks, 1), minor=True)
    cal.set_yticks(np.arange(-0.5, 7, 1), minor=True)
    cal.grid(which="minor", color="white", lw=2)
    cal.tick_params(which="minor", length=0)
    progress = report["progress"]
    cal.set_title(f"Sessions a day, {report['from']} to {report['to']}: {report['days_meeting_target']} of "
                  f"{report['days']} days with {per_day}; streak {progress['streak_days']} "
                  f"day{'s' if progress['streak_days'] != 1 else ''} "
                  f"(programme {progress['programme_days']})", fontsize=11, loc="left")
    legend = [Patch(color=colours[n], label=f"{n}{'+' if n == per_day else ''} session{'s' if n != 1 else ''}")
              for n in range(per_day + 1)]
    cal.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=8, frameon=False)

    palette = plt.get_cmap("tab10")
    weekly = report["days"] > 90  # a year of daily points is noise: a point a week reads better
    trends = [dict(s, points=_weekly(s["points"], first, last)) for s in report["trends"]] if weekly else report["trends"]
    per = "weekly mean" if weekly else "daily mean"
    marker = "-o" if report["days"] <= 60 or weekly else "-"

    def dates_of(points):
        return [datetime.combine(date.fromisoformat(p["date"]), time(12)) for p in points]  # a day's point at its middle

    ax_p = fig.add_subplot(grid[1])
    for i, step in enumerate(trends):
        points = [p for p in step["points"] if p["mean_kpa"] is not None]
        if points:
            ax_p.plot(dates_of(points), [p["mean_kpa"] for p in points], marker, ms=3, lw=1.4, color=palette(i % 10),
                      label=step["name"])
    limits = sorted({s["pressure_limit_kpa"] for s in trends})
    for limit in limits:
        ax_p.axhline(limit, color=LIMIT_COLOUR, ls="--", lw=1)
        names = [s["name"] for s in trends if s["pressure_limit_kpa"] == limit]
        which = "" if len(names) > len(trends) / 2 else f" ({', '.join(names)})"
        ax_p.annotate(f"limit {limit:g} kPa{which}", (1.0, limit), xycoords=("axes fraction", "data"), ha="right",
                      va="bottom", fontsize=7.5, color=LIMIT_COLOUR,
                      bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1})
    if limits:
        ax_p.plot([], [], color=LIMIT_COLOUR, ls="--", lw=1, label="pressure limits")
    ax_p.set_title(f"Mean pressure per step ({per})", fontsize=11, loc="left")
    ax_p.set_ylabel("pressure (kPa)")
    ax_p.set_ylim(bottom=0)

    ax_r = fig.add_subplot(grid[2], sharex=ax_p)
    for i, step in enumerate(trends):
        if step["kind"] != "roll":
            ax_r.plot(dates_of(step["points"]), [p["reps"] for p in step["points"]], marker, ms=3, lw=1.4,
                      color=palette(i % 10), label=step["name"])
    ax_r.set_title(f"Reps per trigger-point step (per session, {per})", fontsize=11, loc="left")
    ax_r.set_ylabel("reps")
    ax_r.set_ylim(bottom=0)

    ax_s = fig.add_subplot(grid[3], sharex=ax_p)
    for i, step in enumerate(trends):
        if step["kind"] == "roll":
            ax_s.plot(dates_of(step["points"]), [p["active_s"] for p in step["points"]], marker, ms=3, lw=1.4,
                      color=palette(i % 10), label=step["name"])
    ax_s.set_title(f"Rolling time per rolling step (per session, {per})", fontsize=11, loc="left")
    ax_s.set_ylabel("rolling (s)")
    ax_s.set_xlabel("date")
    ax_s.set_ylim(bottom=0)

    for ax in (ax_p, ax_r, ax_s):
        ax.set_xlim(datetime.combine(first, time()), datetime.combine(last + timedelta(days=1), time()))
        ax.xaxis.set_major_formatter(DateFormatter("%d %b"))
        ax.grid(color="#e4e4e4", lw=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=8, frameon=False)
        else:
            ax.text(0.5, 0.5, "no steps logged in these days", transform=ax.transAxes, ha="center", color="#777777")
    # the three trend panels share the dates: labelled once, at the bottom (not autofmt_xdate,
    # which would hide the calendar's week labels too)
    for ax in (ax_p, ax_r):
        ax.tick_params(labelbottom=False)
    for label in ax_s.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    fig.subplots_adjust(left=0.07, right=0.78, top=0.96, bottom=0.08)
    _save(fig, out)
    plt.close(fig)
    return out


def _weekly(points: list[dict], first: date, last: date) -> list[dict]:
    """Daily trend points as weekly ones (session-weighted means), dated at the middle of the
    week's days in the report (the current week is cut short at today: its point must not
    fall after today, off the chart)."""
    weeks: dict[int, list[dict]] = {}
    for p in points:
        weeks.setdefault((date.fromisoformat(p["date"]) - first).days // 7, []).append(p)
    out = []
    for week, group in sorted(weeks.items()):
        n = sum(p["sessions"] for p in group)
        begins = first + timedelta(days=7 * week)
        ends = min(begins + timedelta(days=6), last)
        row = {"date": (begins + (ends - begins) // 2).isoformat(), "sessions": n}
        for key in ("mean_kpa", "reps", "strokes", "active_s"):
            have = [(p[key], p["sessions"]) for p in group if p[key] is not None]
            weight = sum(w for _, w in have)
            row[key] = round(sum(v * w for v, w in have) / weight, 2) if weight else None
        out.append(row)
    return out


def _save(fig, out: Path) -> None:
    import io

    image = io.BytesIO()
    fig.savefig(image, format=out.suffix.lstrip(".").lower() or "png")
    try:
        write_atomically(out, image.getvalue())
    except OSError as exc:
        raise KneerollError(f"cannot write {out}: {exc.strerror or exc}",
                            "free some space or choose another --out; nothing was left half-written") from None
