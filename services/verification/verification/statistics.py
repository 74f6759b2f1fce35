"""Statistics over case metadata (issue: counts by unit, category, state and month; deadline
compliance; median days per stage; CSV).

Small counts are suppressed: any count from 1 to 4 is shown as ``"<5"``. A small unit with one
report in a month would otherwise let a colleague guess who reported; zero stays 0 because an
empty cell reveals nobody. Shares of cases handled in time are given only when at least 5 cases
were decided, for the same reason.

Reach: an administrator sees statistics over every case (metadata only, no case pages); a
supervisor or inspector over the cases in their reach.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import statistics as pystats
from collections import Counter, defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import deadlines, lifecycle, reach, views
from .i18n import translator
from .models import Case, CaseClock, CaseHistory, Staff, as_utc, utcnow

SUPPRESS_BELOW = 5


def masked(count: int) -> int | str:
    return "<5" if 0 < count < SUPPRESS_BELOW else count


def _cases(session: Session, staff: Staff) -> list[Case]:
    if staff.role == "admin" and staff.active:
        return list(session.scalars(select(Case)))
    condition = reach.scope_filter(session, staff)  # reach is defined in one place
    return [] if condition is None else list(session.scalars(select(Case).where(condition)).unique())


def compute(session: Session, staff: Staff, now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    cases = _cases(session, staff)
    ids = [c.case_id for c in cases]
    by = {name: Counter() for name in ("unit", "category", "state", "month")}
    for c in cases:
        by["unit"][c.unit] += 1
        by["category"][c.category] += 1
        by["state"][c.state] += 1
        by["month"][as_utc(c.created_at).strftime("%Y-%m")] += 1

    in_time: dict[str, dict] = {}
    clocks = list(session.scalars(select(CaseClock).where(CaseClock.case_id.in_(ids)))) if ids else []
    for clock in (deadlines.ACKNOWLEDGE, deadlines.FEEDBACK, deadlines.VERIFICATION):
        met = late = 0
        for row in clocks:
            if row.clock != clock:
                continue
            due = deadlines.effective_due(row, now)
            if row.stopped_at is not None:
                met, late = (met + 1, late) if as_utc(row.stopped_at) <= due and row.breached_at is None else (met, late + 1)
            elif due < now:
                late += 1
        decided = met + late
        in_time[clock] = {"decided": masked(decided),
                          "share_in_time": round(met / decided, 3) if decided >= SUPPRESS_BELOW else None}

    durations: dict[str, list[float]] = defaultdict(list)
    if ids:
        history = session.scalars(select(CaseHistory).where(CaseHistory.case_id.in_(ids))
                                  .order_by(CaseHistory.case_id, CaseHistory.at, CaseHistory.id))
        previous: dict[str, CaseHistory] = {}
        for h in history:
            if h.from_state == h.to_state and h.from_state is not None:
                continue  # reassignment notes, not a stage change
            before = previous.get(h.case_id)
            if before is not None:
                durations[before.to_state].append((as_utc(h.at) - as_utc(before.at)).total_seconds() / 86400)
            previous[h.case_id] = h
    median_days = {state: round(pystats.median(values), 2) for state, values in durations.items()
                   if len(values) >= SUPPRESS_BELOW}

    def table(counter: Counter, labels=None) -> list[dict]:
        return [{"key": k, "label": (labels(k) if labels else k), "count": masked(v)}
                for k, v in sorted(counter.items())]

    return {
        "total": masked(len(cases)),
        "by_unit": table(by["unit"]),
        "by_category": table(by["category"], lambda k: _category_label(k)),
        "by_state": table(by["state"], lambda k: lifecycle.labels(k)["label"] if k in lifecycle.STATE_LABELS else k),
        "by_month": table(by["month"]),
        "deadlines": in_time,
        "median_days_per_stage": median_days,
        "suppression": "counts from 1 to 4 are shown as <5",
    }


def localise(stats: dict, lang: str) -> dict:
    """The same figures with category, state and clock labels in ``lang`` (for the console)."""
    index = 1 if lang == "en" else 0
    lang = "en" if index else "id"
    out = dict(stats)
    out["by_category"] = [dict(r, label=views.category_labels(r["key"])["labels"][lang])
                          for r in stats["by_category"]]
    out["by_state"] = [dict(r, label=lifecycle.labels(r["key"])["labels"][lang]
                            if r["key"] in lifecycle.STATE_LABELS else r["key"]) for r in stats["by_state"]]
    out["clock_labels"] = {k: v[index] for k, v in deadlines.CLOCK_LABELS.items()}
    return out


def _category_label(code: str) -> str:
    return views.category_labels(code)["label"]


def to_csv(stats: dict) -> str:
    """One row per figure: dimension, key, value (suppressed counts stay "<5")."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["dimension", "key", "value"])
    writer.writerow(["total", "", stats["total"]])
    for dimension in ("unit", "category", "state", "month"):
        for row in stats[f"by_{dimension}"]:
            writer.writerow([dimension, row["key"], row["count"]])
    for clock, figures in stats["deadlines"].items():
        writer.writerow(["in_time_share", clock, "" if figures["share_in_time"] is None else figures["share_in_time"]])
    for state, days in sorted(stats["median_days_per_stage"].items()):
        writer.writerow(["median_days", state, days])
    return out.getvalue()


CHARTS = ("by_unit", "by_category", "by_state", "by_month")


def console_view(stats: dict, lang: str) -> tuple[dict, dict[str, str]]:
    """(the figures labelled in ``lang``, an SVG bar chart per breakdown) for the stats page."""
    figures, t = localise(stats, lang), translator(lang)
    return figures, {key: bar_chart(figures[key], t(key)) for key in CHARTS}


def bar_chart(rows: list[dict], title: str, width: int = 560) -> str:
    """A horizontal bar chart as inline SVG markup, rendered on the server (no script, no
    third-party library). Suppressed counts are drawn as a hatched stub labelled "<5"."""
    from markupsafe import escape

    bar_h, gap, label_w = 22, 6, 200
    numeric = [r["count"] for r in rows if isinstance(r["count"], int)]
    top = max(numeric + [SUPPRESS_BELOW])
    height = max(1, len(rows)) * (bar_h + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, row in enumerate(rows):
        y = 20 + i * (bar_h + gap)
        value = row["count"]
        length = (width - label_w - 60) * ((value if isinstance(value, int) else SUPPRESS_BELOW / 2) / top)
        cls = "bar" if isinstance(value, int) else "bar suppressed"
        parts.append(f'<text x="0" y="{y + 15}" class="label">{escape(str(row["label"]))[:40]}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" class="{cls}"/>'
                     f'<text x="{label_w + length + 6:.1f}" y="{y + 15}" class="value">{escape(str(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)
