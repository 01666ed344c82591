"""``proctor replay`` and ``proctor regrade``: grade recordings offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from services.core.events import rfc3339_to_ms
from services.core.model import ExamResult
from services.core.textjudge import TextJudge
from services.errors import ConfigError, ProctorError
from services.judge.configured import configured_judge
from services.offline.reader import recordings
from services.offline.regrade import diff_results
from services.offline.render import print_refused, print_regrade, print_replay, refused_json
from services.offline.replay import replay_file, results_json
from services.rubrics import resolver


def _at(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return rfc3339_to_ms(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not an RFC 3339 time like 2026-11-27T12:00:00.000Z"
        ) from exc


rubrics_dir_option = click.option(
    "--rubrics-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PROCTOR_RUBRICS_DIR",
    help="Look for <rubric_id>/v<version>.yaml here before the rubrics shipped with proctor.",
)


def _fail(exc: ProctorError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


#: exit status of ``replay``/``regrade --strict`` when any line was refused
EXIT_REFUSED = 3


def _verify(file: Path) -> None:
    from services.settings import load_settings
    from services.trust.keys import Keyring
    from services.trust.recording import verify_recording

    try:
        check = verify_recording(file, Keyring.from_env(load_settings().trust.as_env()))
    except ProctorError as exc:
        _fail(exc)
        return
    for line in check.refused[:20]:
        click.echo(f"refused {line}", err=True)
    if not check.ok:
        click.echo(
            f"error: {len(check.refused)} control events of {file.name} are not signed by a "
            "trusted key; nothing graded",
            err=True,
        )
        sys.exit(2)
    click.echo(f"verified {check.verified} control event signatures", err=True)


def run_judge(review_threshold: float | None = None) -> TextJudge:
    """The configured text judge (PROCTOR_JUDGE_*; a language model's verdicts come from
    the verdict cache when they were given before), with the run's review threshold."""
    from services.settings import load_settings

    flags = {} if review_threshold is None else {"judge": {"review_threshold": review_threshold}}
    try:
        return configured_judge(load_settings(overrides=flags).judge)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command(
    "replay",
    epilog=f"""Exit status: 0 graded; 2 an error (unreadable file, bad option, --verify
without a keyring or with a control event not signed by a trusted key: nothing graded);
{EXIT_REFUSED} with --strict when any line was refused.""",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rubric-version",
    help="Grade with this version of each exam's rubric instead of the recorded one.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the grades as JSON on stdout.")
@click.option(
    "--at",
    "at",
    metavar="TS",
    help="Grade as of this event time (RFC 3339); default: the latest event.",
)
@click.option(
    "--strict",
    is_flag=True,
    help=f"Exit with status {EXIT_REFUSED} when any line was refused (they are always "
    "reported and skipped, as the live worker dead-letters them).",
)
@click.option(
    "--skip-invalid", is_flag=True, hidden=True, help="Kept for old scripts: the default."
)
@click.option(
    "--verify",
    is_flag=True,
    help="First check the signature of every control event (`_signer`/`_signature`) "
    "against the keys in PROCTOR_TRUSTED_KEYS; grade nothing if one fails.",
)
@rubrics_dir_option
@click.option(
    "--review-threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="A text criterion judged at a lower confidence waits for review [PROCTOR_REVIEW_THRESHOLD].",
)
def replay(
    file: Path,
    rubric_version: str | None,
    as_json: bool,
    at: str | None,
    strict: bool,
    skip_invalid: bool,
    rubrics_dir: Path | None,
    verify: bool = False,
    review_threshold: float | None = None,
) -> None:
    """Grade a recorded exam (JSON Lines) offline with the live service's engine.

    Every line is checked as the live worker checks a record (schema and contract rules);
    a line it would dead-letter is refused with the same class and reason, reported, and
    grades nothing. An exact repeat of an event is graded once; an event id repeated with
    another body is refused (conflicting_duplicate).
    """
    if verify:
        _verify(file)
    try:
        result = replay_file(
            file,
            resolver(rubrics_dir),
            run_judge(review_threshold),
            at_ms=_at(at),
            rubric_version=rubric_version,
        )
    except ProctorError as exc:
        _fail(exc)
        return
    for r in result.results:
        if r.error:
            click.echo(f"warning: {r.exam_id}@{r.platform_id}: {r.error}", err=True)
    if as_json:
        for b in result.refused:
            click.echo(f"refused {b}", err=True)
        out = {**results_json(result.results), "refused": refused_json(result.refused)}
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        console = Console()
        print_replay(console, result.results, result.audit, result.at_ms)
        print_refused(console, result.refused)
    if strict and result.refused:
        sys.exit(EXIT_REFUSED)


def _publish(results: list[ExamResult], label: str, namespace: str) -> None:
    import contextlib

    from services.connections import open_catalog, trino_connect
    from services.offline.versions import publish_version
    from services.settings import load_settings

    settings = load_settings()
    catalog = open_catalog(settings.catalog)
    with contextlib.closing(trino_connect(settings.trino)) as conn:
        version = publish_version(catalog, conn, settings.trino.catalog, namespace, results, label)
    click.echo(
        f"published version {version} ({label}) of {len(results)} exams to "
        f"{namespace}.graded_versions; {namespace}.exam_scores shows it",
        err=True,
    )


@click.command("regrade")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--from", "v1", required=True, help="Rubric version graded before.")
@click.option("--to", "v2", required=True, help="Rubric version to compare with.")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON on stdout.")
@click.option(
    "--strict",
    is_flag=True,
    help=f"Exit with status {EXIT_REFUSED} when any line of any recording was refused.",
)
@click.option(
    "--publish",
    is_flag=True,
    help="Also write the --to grades as a new version in <namespace>.graded_versions; the "
    "scoreboard's exam_scores then shows it, exam_score_versions keeps every version.",
)
@click.option("--label", help="What the published version is [regrade to rubric v<--to>].")
@click.option(
    "--namespace",
    default="grading",
    show_default=True,
    envvar="PROCTOR_NAMESPACE",
    help="Iceberg namespace of the grader's tables (PROCTOR_TABLE's).",
)
@rubrics_dir_option
@click.option(
    "--review-threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="A text criterion judged at a lower confidence waits for review [PROCTOR_REVIEW_THRESHOLD].",
)
def regrade(
    paths: tuple[Path, ...],
    v1: str,
    v2: str,
    as_json: bool,
    strict: bool,
    rubrics_dir: Path | None,
    publish: bool = False,
    label: str | None = None,
    namespace: str = "grading",
    review_threshold: float | None = None,
) -> None:
    """Grade recordings (files or folders of *.jsonl) under two rubric versions and show what changes.

    Lines the live worker would refuse are reported on stderr and grade nothing.
    With --publish the new grades become the current version (the stack's catalog and
    Trino from PROCTOR_* variables). Exit status: 0 compared; 2 an error; 3 with --strict
    when any line was refused.
    """
    judge = run_judge(review_threshold)
    resolve = resolver(rubrics_dir)
    diffs = []
    published: list[ExamResult] = []
    refused = 0
    try:
        files = recordings(list(paths))
        if not files:
            raise ProctorError(f"no *.jsonl recordings in {', '.join(map(str, paths))}")
        for f in files:
            first = replay_file(f, resolve, judge, rubric_version=v1)
            before = first.results
            after = replay_file(f, resolve, judge, rubric_version=v2).results
            for b in first.refused:
                click.echo(f"refused {b}", err=True)
            refused += len(first.refused)
            for r in (*before, *after):
                if r.error:
                    raise ProctorError(f"{f}: {r.exam_id}: {r.error}")
            diffs += diff_results(str(f), before, after)
            published += after
        if publish:
            _publish(published, label or f"regrade to rubric v{v2}", namespace)
    except ProctorError as exc:
        _fail(exc)
        return
    if as_json:
        out = [
            {
                "source": d.source,
                "exam_id": d.exam_id,
                "platform_id": d.platform_id,
                "total_pct": [d.total_before, d.total_after],
                "passed": [d.passed_before, d.passed_after],
                "criteria": {
                    c.criterion_id: {
                        "from": None
                        if c.before is None
                        else {"state": c.before.state, "score": c.before.score},
                        "to": None
                        if c.after is None
                        else {
                            "state": c.after.state,
                            "score": c.after.score,
                            "reason": c.after.reason,
                        },
                    }
                    for c in d.changes
                },
            }
            for d in diffs
            if d.changed
        ]
        click.echo(
            json.dumps({"from": v1, "to": v2, "exams": len(diffs), "changed": out}, indent=2)
        )
    else:
        print_regrade(Console(), diffs, v1, v2)
    if strict and refused:
        sys.exit(EXIT_REFUSED)
