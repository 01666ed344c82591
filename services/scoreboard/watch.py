"""The terminal scoreboard: the same numbers as Superset's, from Trino, in a live rich table.

It runs the bundle's own ``exam_summary`` dataset SQL, so the terminal and the dashboard
can never disagree about a candidate's parts, total or verdict.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from services.errors import ConfigError, StackError
from services.scoreboard.bundle import load_bundle

SUMMARY_DATASET = "exam_summary"
VERDICT_STYLE = {
    "pass": "bold green",
    "fail": "bold red",
    "review": "yellow",
    "in progress": "cyan",
}


@dataclass(frozen=True, slots=True)
class ExamRow:
    """One exam as the scoreboard shows it."""

    exam_id: str
    candidate_id: str
    platform_id: str
    part_1: float
    part_2: float
    part_3: float
    total_score: float
    total_pct: float
    passed: bool
    verdict: str
    met: int
    failed: int
    unknown: int
    root_cause: str | None
    root_cause_minutes: int | None
    last_graded_at: datetime | None


def summary_sql() -> str:
    """The ``exam_summary`` dataset's SQL, straight from the bundle."""
    for ds in load_bundle().datasets.values():
        if ds.get("table_name") == SUMMARY_DATASET and ds.get("sql"):
            return str(ds["sql"])
    raise ConfigError(f"the scoreboard bundle has no {SUMMARY_DATASET} dataset with SQL")


def fetch_rows(conn: Any, exam_ids: Iterable[str] = ()) -> list[ExamRow]:
    """Every exam (or only ``exam_ids``) from Trino, ordered by candidate."""
    wanted = sorted(set(exam_ids))
    sql = f"SELECT * FROM ({summary_sql()}) s"
    if wanted:
        sql += " WHERE exam_id IN (" + ", ".join("?" for _ in wanted) + ")"
    sql += " ORDER BY candidate_id, exam_id"
    cur = conn.cursor()
    try:
        cur.execute(sql, wanted) if wanted else cur.execute(sql)
        rows = cur.fetchall()
        names = [d[0] for d in cur.description]
    except Exception as exc:  # the Trino client raises several unrelated types
        raise StackError(_explain(exc)) from exc
    out = []
    for raw in rows:
        r = dict(zip(names, raw, strict=True))
        out.append(
            ExamRow(
                exam_id=r["exam_id"],
                candidate_id=r["candidate_id"],
                platform_id=r["platform_id"],
                part_1=float(r["part_1"] or 0),
                part_2=float(r["part_2"] or 0),
                part_3=float(r["part_3"] or 0),
                total_score=float(r["total_score"] or 0),
                total_pct=float(r["total_pct"] or 0),
                passed=bool(r["passed"]),
                verdict=str(r["verdict"]),
                met=int(r["criteria_met"]),
                failed=int(r["criteria_failed"]),
                unknown=int(r["criteria_unknown"]),
                root_cause=r["root_cause"],
                root_cause_minutes=r["root_cause_minutes"],
                last_graded_at=r["last_graded_at"],
            )
        )
    return out


def _explain(exc: Exception) -> str:
    text = str(exc)
    if "does not exist" in text and "exam_scores" in text:
        return (
            "grading.exam_scores does not exist yet: start the grader (`proctor worker`), "
            "which creates the table and the view"
        )
    if "pipeline_health" in text and "does not exist" in text:
        return (
            "grading.pipeline_health does not exist yet: `proctor scoreboard up` starts its sampler"
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"cannot query Trino: {first[:300]}"


def _num(x: float) -> str:
    return f"{x:g}"


def render(rows: Sequence[ExamRow], title: str = "proctor scoreboard", note: str = "") -> Table:
    table = Table(title=title, caption=note or None, caption_justify="left")
    for name, justify in (
        ("candidate", "left"),
        ("exam", "left"),
        ("part 1", "right"),
        ("part 2", "right"),
        ("part 3", "right"),
        ("total %", "right"),
        ("verdict", "left"),
        ("met", "right"),
        ("failed", "right"),
        ("unknown", "right"),
        ("root cause", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        cause = r.root_cause or "-"
        if r.root_cause_minutes is not None:
            cause += f" ({r.root_cause_minutes} min)"
        table.add_row(
            r.candidate_id,
            r.exam_id,
            _num(r.part_1),
            _num(r.part_2),
            _num(r.part_3),
            f"{r.total_pct:.1f}",
            Text(r.verdict, style=VERDICT_STYLE.get(r.verdict, "")),
            str(r.met),
            str(r.failed),
            Text(str(r.unknown), style="yellow" if r.unknown else ""),
            cause,
        )
    if not rows:
        table.add_row("(no exam graded yet)", *[""] * 10)
    return table


def watch(
    connect: Callable[[], Any],
    *,
    interval_s: float = 2.0,
    exam_ids: Iterable[str] = (),
    stop: threading.Event | None = None,
    console: Console | None = None,
    extra: Callable[[], Any] | None = None,
) -> None:
    """Redraw the table every ``interval_s`` until ``stop`` is set (or Ctrl-C)."""
    stop = stop or threading.Event()
    wanted = list(exam_ids)
    conn = connect()
    with Live(console=console or Console(), refresh_per_second=4, transient=False) as live:
        while not stop.is_set():
            stamp = datetime.now().strftime("%H:%M:%S")
            try:
                rows = fetch_rows(conn, wanted)
                table = render(rows, note=f"from Trino at {stamp}; Ctrl-C to stop")
            except StackError as exc:
                table = render([], note=f"{stamp}: {exc}")
                with contextlib.suppress(Exception):
                    conn = connect()
            live.update(Group(table, extra()) if extra is not None else table)
            stop.wait(interval_s)
