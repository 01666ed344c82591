"""Terminal rendering of replay and regrade results (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.core.engine import Audit
from services.core.events import ms_to_rfc3339
from services.core.model import CriterionResult, ExamResult
from services.offline.reader import BadLine, count_by_class
from services.offline.regrade import ExamDiff

STYLE = {
    "met": "green",
    "partial": "yellow",
    "pending": "cyan",
    "failed": "red",
    "expired": "magenta",
    "unknown": "bold white on red",
}


def state_text(state: str) -> Text:
    return Text(state, style=STYLE.get(state, ""))


def _score(c: CriterionResult) -> str:
    return f"{c.score:g}/{c.max_score:g}" if c.max_score else "-"


def exam_table(r: ExamResult) -> Table:
    verdict = "PASSED" if r.passed else "not passed"
    title = f"{r.exam_id}  {r.candidate_id}@{r.platform_id}  {r.rubric_id} v{r.rubric_version}  {r.total_pct:g}%  {verdict}"
    t = Table(title=title, title_justify="left", expand=True, show_lines=False)
    t.add_column("criterion", no_wrap=True)
    t.add_column("state", no_wrap=True)
    t.add_column("score", justify="right", no_wrap=True)
    t.add_column("reason", ratio=1)
    t.add_column("evidence", justify="right", no_wrap=True)
    for c in r.criteria:
        t.add_row(c.criterion_id, state_text(c.state), _score(c), c.reason, str(len(c.evidence)))
    parts = "  ".join(f"part {k}: {v.score:g}/{v.max_score:g}" for k, v in r.parts.items())
    said = [f"{n.kind}: {n.reason}" for n in r.notes] or list(r.review)
    t.caption = parts + ("" if not said else "  |  REVIEW: " + "; ".join(said))
    t.caption_justify = "left"
    return t


def print_replay(
    console: Console, results: Sequence[ExamResult], audit: Audit, at_ms: int | None
) -> None:
    if not results:
        console.print("No exam in the recording (no exam.started).")
    for r in results:
        if r.error:
            console.print(f"[red]{r.exam_id}@{r.platform_id}: {r.error}[/red]")
            continue
        console.print(exam_table(r))
    at = ms_to_rfc3339(at_ms) if at_ms is not None else "-"
    unclaimed = sum(audit.unclaimed.values())
    console.print(
        f"graded at {at}; {audit.control} control events, {audit.bound} signals graded, "
        f"{unclaimed} signals outside every exam"
        + (f" ({', '.join(sorted(audit.unclaimed))})" if unclaimed else "")
    )


def print_regrade(console: Console, diffs: Sequence[ExamDiff], v1: str, v2: str) -> None:
    changed = [d for d in diffs if d.changed]
    for d in changed:
        t = Table(
            title=f"{d.source}: {d.exam_id}  {d.candidate_id}@{d.platform_id}  "
            f"{d.total_before:g}% -> {d.total_after:g}%  passed {d.passed_before} -> {d.passed_after}",
            title_justify="left",
            expand=True,
        )
        t.add_column("criterion", no_wrap=True)
        t.add_column(f"v{v1}", no_wrap=True)
        t.add_column(f"v{v2}", no_wrap=True)
        t.add_column(f"reason (v{v2})", ratio=1)
        for ch in d.changes:
            before = (
                Text("absent")
                if ch.before is None
                else state_text(ch.before.state) + f" {_score(ch.before)}"
            )
            after = (
                Text("absent")
                if ch.after is None
                else state_text(ch.after.state) + f" {_score(ch.after)}"
            )
            t.add_row(ch.criterion_id, before, after, ch.after.reason if ch.after else "")
        console.print(t)
    console.print(f"{len(changed)} of {len(diffs)} exams change from v{v1} to v{v2}.")


def refused_json(refused: Sequence[BadLine]) -> dict[str, object]:
    """Refused lines in the shape ``proctor replay --json`` promises under ``"refused"``."""
    return {
        "count": len(refused),
        "by_class": count_by_class(list(refused)),
        "lines": [
            {
                "line": b.line,
                "error_class": b.error_class,
                "reason": b.reason,
                "event_id": b.event_id,
            }
            for b in refused
        ],
    }


def print_refused(console: Console, refused: Sequence[BadLine], limit: int = 20) -> None:
    """The refused lines (the first ``limit``) and a count per dead-letter class."""
    if not refused:
        return
    for b in refused[:limit]:
        console.print(Text(f"refused {b}", style="red"))
    if len(refused) > limit:
        console.print(f"... and {len(refused) - limit} more refused lines (see --json)")
    counts = ", ".join(f"{k} {v}" for k, v in count_by_class(list(refused)).items())
    console.print(
        Text(f"{len(refused)} line(s) refused as the live worker would: {counts}", style="red")
    )
