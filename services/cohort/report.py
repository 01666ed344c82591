"""Per-candidate reports (Markdown and HTML) and a cohort table (CSV, Parquet), from graded exams.

A report is what a candidate, an appeal's reviewer or an external examiner reads: the
status, the part and total scores, then every criterion with its state, score, reason
(an override's who and why included) and the events that decided it, then the open
review notes. Pure: exam results in, text out; :func:`write_reports` puts them in a folder.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from services.core.matching import clock
from services.core.model import OVERALL_PART, ExamResult
from services.core.model import exam_status as status

#: colours of the states (the scoreboard's)
STATE_COLOURS = {
    "met": "#1a7f37",
    "partial": "#9a6700",
    "failed": "#cf222e",
    "expired": "#cf222e",
    "unknown": "#8250df",
    "pending": "#57606a",
}
PARTS = ("1", "2", "3")


def _file_name(r: ExamResult) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{r.candidate_id or r.platform_id}-{r.exam_id}")


def _parts(r: ExamResult) -> list[tuple[str, float, float]]:
    return [(p, r.parts[p].score, r.parts[p].max_score) for p in PARTS if p in r.parts]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def candidate_markdown(r: ExamResult) -> str:
    """The candidate's report in Markdown."""
    lines = [
        f"# {r.candidate_id or r.platform_id}: {r.exam_id}",
        "",
        f"- platform: `{r.platform_id}`",
        f"- rubric: {r.rubric_id} v{r.rubric_version}",
        f"- started: {clock(r.started_ms)}"
        + (f", ended: {clock(r.ended_ms)}" if r.ended_ms is not None else ", not ended"),
        f"- status: **{status(r)}**, total {r.total_pct:.1f} %",
        "",
        "| part | score | max |",
        "| --- | --- | --- |",
        *(f"| {p} | {s:g} | {m:g} |" for p, s, m in _parts(r)),
        "",
        "## Criteria",
        "",
        "| criterion | part | state | score | reason | evidence |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in r.criteria:
        score = "" if c.part == OVERALL_PART else f"{c.score:g}/{c.max_score:g}"
        evidence = ", ".join(f"`{e}`" for e in c.evidence) or "-"
        lines.append(
            f"| {c.criterion_id} | {c.part} | **{c.state}** | {score} | "
            f"{_md_cell(c.reason)} | {_md_cell(evidence)} |"
        )
    lines += ["", "## Review notes", ""]
    notes = [f"- {n.kind}: {n.reason}" for n in r.notes] or ["- none open"]
    lines += notes
    if r.error:
        lines += ["", f"**Could not be graded:** {r.error}"]
    return "\n".join(lines) + "\n"


def candidate_html(r: ExamResult) -> str:
    """The candidate's report as one self-contained HTML page."""
    e = html.escape
    rows = []
    for c in r.criteria:
        colour = STATE_COLOURS.get(c.state, "#57606a")
        score = "" if c.part == OVERALL_PART else f"{c.score:g}/{c.max_score:g}"
        evidence = "<br>".join(f"<code>{e(x)}</code>" for x in c.evidence) or "-"
        rows.append(
            f"<tr><td>{e(c.criterion_id)}</td><td>{e(c.part)}</td>"
            f'<td class="state" style="color:{colour}">{e(c.state)}</td>'
            f"<td>{score}</td><td>{e(c.reason)}</td><td>{evidence}</td></tr>"
        )
    parts = "".join(f"<tr><td>{p}</td><td>{s:g}</td><td>{m:g}</td></tr>" for p, s, m in _parts(r))
    notes = "".join(f"<li>{e(n.kind)}: {e(n.reason)}</li>" for n in r.notes) or "<li>none open</li>"
    title = e(f"{r.candidate_id or r.platform_id}: {r.exam_id}")
    ended = clock(r.ended_ms) if r.ended_ms is not None else "not ended"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
td, th {{ border: 1px solid #d0d7de; padding: .3rem .5rem; vertical-align: top; text-align: left; }}
td.state {{ font-weight: 600; }}
</style></head><body>
<h1>{title}</h1>
<p>platform <code>{e(r.platform_id)}</code>, rubric {e(r.rubric_id)} v{e(r.rubric_version)},
started {clock(r.started_ms)}, ended {ended}</p>
<p>status <strong id="status">{status(r)}</strong>, total <strong id="total">{r.total_pct:.1f} %</strong></p>
<table><tr><th>part</th><th>score</th><th>max</th></tr>{parts}</table>
<h2>Criteria</h2>
<table><tr><th>criterion</th><th>part</th><th>state</th><th>score</th><th>reason</th><th>evidence</th></tr>
{"".join(rows)}
</table>
<h2>Review notes</h2>
<ul>{notes}</ul>
</body></html>
"""


CSV_FIELDS = (
    "candidate_id",
    "platform_id",
    "exam_id",
    "status",
    "total_pct",
    "passed",
    "part1",
    "part2",
    "part3",
    "open_reviews",
    "overridden",
)


def cohort_rows(results: Sequence[ExamResult]) -> list[dict[str, object]]:
    """One row per exam, sorted by candidate: the CSV's and the Parquet file's."""
    rows: list[dict[str, object]] = []
    for r in sorted(results, key=lambda r: (r.candidate_id, r.exam_id)):
        parts = {p: f"{s:g}/{m:g}" for p, s, m in _parts(r)}
        rows.append(
            {
                "candidate_id": r.candidate_id,
                "platform_id": r.platform_id,
                "exam_id": r.exam_id,
                "status": status(r),
                "total_pct": round(r.total_pct, 2),
                "passed": r.passed,
                "part1": parts.get("1", ""),
                "part2": parts.get("2", ""),
                "part3": parts.get("3", ""),
                "open_reviews": len(r.notes),
                "overridden": " ".join(
                    c.criterion_id
                    for c in r.criteria
                    if c.reason.startswith(("Overridden by", "Appeal decided by"))
                ),
            }
        )
    return rows


def cohort_csv(results: Sequence[ExamResult]) -> str:
    """The cohort's rows as CSV; part columns read `score/max`."""
    out = io.StringIO()
    w = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in cohort_rows(results):
        w.writerow(
            {**row, "total_pct": f"{row['total_pct']:.2f}", "passed": str(row["passed"]).lower()}
        )
    return out.getvalue()


def write_cohort_parquet(results: Sequence[ExamResult], path: Path) -> None:
    """The cohort's rows as Parquet (typed: total_pct a double, passed a boolean)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(cohort_rows(results)), path)


def write_reports(results: Iterable[ExamResult], out_dir: Path) -> list[Path]:
    """``<candidate>-<exam>.md`` and ``.html`` per exam, ``cohort.csv`` and
    ``cohort.parquet`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = list(results)
    written: list[Path] = []
    for r in results:
        name = _file_name(r)
        md, page = out_dir / f"{name}.md", out_dir / f"{name}.html"
        md.write_text(candidate_markdown(r), encoding="utf-8")
        page.write_text(candidate_html(r), encoding="utf-8")
        written += [md, page]
    table = out_dir / "cohort.csv"
    table.write_text(cohort_csv(results), encoding="utf-8")
    parquet = out_dir / "cohort.parquet"
    write_cohort_parquet(results, parquet)
    written += [table, parquet]
    return written
