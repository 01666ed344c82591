"""``proctor review list|confirm|override``: the review queue of text verdicts.

A text criterion the judge decided at a confidence under the review threshold waits in
``<namespace>.review_queue`` (a Trino view over the transitions; see
``services.grader.views.review_queue_sql``) and the exam shows ``review``. A proctor
decides with a signed ``grade.overridden``: ``confirm`` (kind confirm, state graded: the
grader's state stands) or ``override`` (kind override, the state the proctor sets). The
engine grades the decision; the queue row's status follows from the rows it writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from services.errors import ConfigError, ProctorError

STATUSES = ("pending", "confirmed", "overridden", "superseded")


def queue_query(
    catalog: str, namespace: str, status: str | None, candidates: Sequence[str]
) -> tuple[str, list[Any]]:
    """The SELECT of the queue's rows (parameters bound by the driver, never spliced)."""
    from services.grader.sql_names import _check
    from services.grader.views import QUEUE_COLUMNS, QUEUE_VIEW

    sql = (
        f"SELECT {QUEUE_COLUMNS} FROM {_check(catalog, 'catalog')}."
        f"{_check(namespace, 'namespace')}.{QUEUE_VIEW} WHERE 1 = 1"
    )
    params: list[Any] = []
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    if candidates:
        sql += " AND (" + " OR ".join("candidate_id = ? OR platform_id = ?" for _ in candidates)
        sql += ")"
        for c in candidates:
            params += [c, c]
    return sql + " ORDER BY queued_at, exam_id, criterion_id", params


def read_queue(
    conn: Any, catalog: str, namespace: str, status: str | None, candidates: Sequence[str]
) -> list[dict[str, Any]]:
    """The queue's rows as dicts (column -> value)."""
    sql, params = queue_query(catalog, namespace, status, candidates)
    cur = conn.cursor()
    cur.execute(sql, params)
    rows = cur.fetchall()
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in rows]


def check_criterion(criterion_id: str, rubric_id: str, rubric_version: str) -> None:
    """A decision names a text criterion of the exam's rubric, or a UsageError says which."""
    from services.core.rules.text import TextPoints
    from services.rubrics import resolver

    rubric = resolver()(rubric_id, rubric_version)
    texts = [
        c.criterion_id
        for c, rule in zip(rubric.criteria, rubric.rules, strict=True)
        if isinstance(rule, TextPoints)
    ]
    if criterion_id not in texts:
        raise click.UsageError(
            f"{criterion_id!r} is not a text criterion of {rubric_id} v{rubric_version}; "
            f"the review queue holds {', '.join(texts)}"
        )


@click.group("review")
def review() -> None:
    """The review queue: text verdicts the judge was not sure of, for a proctor to decide.

    \b
      proctor review list [--status pending] [--candidate alice] [--json]
      proctor review confirm --candidate alice --criterion p3.senior_tone --reason "..." --by jane
      proctor review override --candidate alice --criterion p3.senior_tone --state met \\
          --reason "..." --by jane
    """


@review.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--candidate", "candidates", multiple=True, metavar="ID", help="Repeatable.")
@click.option("--namespace", default="grading", show_default=True, help="The grader's namespace.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
def review_list(
    status: str | None, candidates: tuple[str, ...], namespace: str, as_json: bool
) -> None:
    """The queue from Trino (PROCTOR_TRINO_URL): what waits, and what was decided by whom."""
    from services.connections import trino_connect
    from services.settings import load_settings

    try:
        settings = load_settings()
        conn = trino_connect(settings.trino)
        rows = read_queue(conn, settings.trino.catalog, namespace, status, candidates)
    except (ConfigError, ProctorError) as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:  # the Trino client's errors: say where and what
        raise click.ClickException(
            f"cannot read {namespace}.review_queue from Trino: {exc}. Is the grader's "
            "namespace right (--namespace) and has the worker created its views?"
        ) from exc
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, default=str, sort_keys=True))
        return
    if not rows:
        click.echo("The review queue is empty.")
        return
    for r in rows:
        who = f" by {r['decided_by']}: {r['reason']}" if r["decided_by"] else ""
        click.echo(
            f"{r['status']:<10} {r['candidate_id']} {r['exam_id']} {r['criterion_id']} "
            f"{r['verdict']} at {r['confidence']:.2f} < {r['threshold']:.2f} ({r['judge']}, "
            f"text {str(r['text_digest'])[:12]}){who}"
        )


def _decision(func: Any) -> Any:
    from services.cohort.cli import _who

    func = click.option("--by", required=True, help="Who decided (the proctor).")(func)
    func = click.option("--reason", required=True, help="Why, in a sentence.")(func)
    func = click.option("--rubric-version", default="1", show_default=True)(func)
    func = click.option("--rubric", "rubric_id", default="y3-final", show_default=True)(func)
    func = click.option(
        "--criterion", "criterion_id", required=True, help="A text criterion, e.g. p3.senior_tone."
    )(func)
    return _who(func)


@review.command("confirm")
@_decision
def review_confirm(
    criterion_id: str, rubric_id: str, rubric_version: str, reason: str, by: str, **flags: Any
) -> None:
    """Confirm the grader's decision (grade.overridden, kind confirm, signed)."""
    from services.cohort.cli import run_action
    from services.cohort.lifecycle import confirm

    if not flags["candidates"]:
        raise click.UsageError("name the candidate (--candidate): a grade is one person's")
    check_criterion(criterion_id, rubric_id, rubric_version)
    run_action(
        flags,
        f"confirm {criterion_id} for",
        lambda e, now: confirm(e, criterion_id, reason, by, now),
    )


@review.command("override")
@click.option(
    "--state", required=True, type=click.Choice(["met", "partial", "failed"]), help="The state."
)
@_decision
def review_override(
    criterion_id: str,
    rubric_id: str,
    rubric_version: str,
    state: str,
    reason: str,
    by: str,
    **flags: Any,
) -> None:
    """Set the criterion's state instead (grade.overridden, kind override, signed)."""
    from services.cohort.cli import run_action
    from services.cohort.lifecycle import override

    if not flags["candidates"]:
        raise click.UsageError("name the candidate (--candidate): a grade is one person's")
    check_criterion(criterion_id, rubric_id, rubric_version)
    run_action(
        flags,
        f"override {criterion_id} -> {state} for",
        lambda e, now: override(e, criterion_id, state, reason, by, now, kind="override"),
    )
