"""``proctor replay`` and ``proctor regrade``: grade recordings offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from services.core.events import rfc3339_to_ms
from services.core.judges import default_judge
from services.errors import ProctorError
from services.offline.reader import BadLine, recordings
from services.offline.regrade import diff_results
from services.offline.render import print_regrade, print_replay
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


def _verify(file: Path) -> None:
    from services.trust.keys import Keyring
    from services.trust.recording import verify_recording

    try:
        check = verify_recording(file, Keyring.from_env())
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


@click.command("replay")
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
    "--skip-invalid",
    is_flag=True,
    help="Skip lines that are not events (reported on stderr) instead of stopping.",
)
@click.option(
    "--verify",
    is_flag=True,
    help="First check the signature of every control event (`_signer`/`_signature`) "
    "against the keys in PROCTOR_TRUSTED_KEYS; grade nothing if one fails.",
)
@rubrics_dir_option
def replay(
    file: Path,
    rubric_version: str | None,
    as_json: bool,
    at: str | None,
    skip_invalid: bool,
    rubrics_dir: Path | None,
    verify: bool = False,
) -> None:
    """Grade a recorded exam (JSON Lines) offline with the live service's engine."""
    if verify:
        _verify(file)
    bad: list[BadLine] = []
    try:
        result = replay_file(
            file,
            resolver(rubrics_dir),
            default_judge(),
            at_ms=_at(at),
            rubric_version=rubric_version,
            bad=bad if skip_invalid else None,
        )
    except ProctorError as exc:
        _fail(exc)
        return
    for b in bad:
        click.echo(f"skipped {b}", err=True)
    for r in result.results:
        if r.error:
            click.echo(f"warning: {r.exam_id}@{r.platform_id}: {r.error}", err=True)
    if as_json:
        click.echo(json.dumps(results_json(result.results), indent=2, ensure_ascii=False))
    else:
        print_replay(Console(), result.results, result.audit, result.at_ms)


@click.command("regrade")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--from", "v1", required=True, help="Rubric version graded before.")
@click.option("--to", "v2", required=True, help="Rubric version to compare with.")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON on stdout.")
@rubrics_dir_option
def regrade(
    paths: tuple[Path, ...], v1: str, v2: str, as_json: bool, rubrics_dir: Path | None
) -> None:
    """Grade recordings (files or folders of *.jsonl) under two rubric versions and show what changes."""
    judge = default_judge()
    resolve = resolver(rubrics_dir)
    diffs = []
    try:
        files = recordings(list(paths))
        if not files:
            raise ProctorError(f"no *.jsonl recordings in {', '.join(map(str, paths))}")
        for f in files:
            before = replay_file(f, resolve, judge, rubric_version=v1).results
            after = replay_file(f, resolve, judge, rubric_version=v2).results
            for r in (*before, *after):
                if r.error:
                    raise ProctorError(f"{f}: {r.exam_id}: {r.error}")
            diffs += diff_results(str(f), before, after)
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
