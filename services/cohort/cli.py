"""``proctor cohort``, ``proctor exam`` and ``proctor fault``: run a cohort's exams.

A cohort lives in the roster (docs/trust.md): each of its platforms is a roster entry
naming the cohort, the candidate, the exam id and the accommodations (extra minutes per
part). Every action is a control event signed with the proctor's key
(``PROCTOR_SIGNING_KEY``) and published through the publisher, for one candidate
(``--candidate``, repeatable) or the whole cohort (``--cohort``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from services.contract.settings import ClientSettings, connection_options
from services.core.events import Event
from services.errors import ProctorError
from services.trust.roster import RosterEntry

Build = Callable[[RosterEntry, int], list[Event]]


def _settings(flags: dict[str, Any]) -> ClientSettings:
    return ClientSettings.from_env(
        bootstrap=flags.get("bootstrap"),
        registry_url=flags.get("registry_url"),
        topic_prefix=flags.get("prefix"),
    )


def _roster(settings: ClientSettings) -> dict[str, RosterEntry]:
    from services.trust.cli import _keyring, _signer
    from services.trust.roster import read_roster

    signer = _signer({})
    return read_roster(settings, _keyring(signer))


def _parse_extra(items: tuple[str, ...]) -> dict[int, int]:
    extra: dict[int, int] = {}
    for item in items:
        part, _, minutes = item.partition("=")
        if not (part.isdigit() and minutes.isdigit()) or int(part) not in (1, 2, 3):
            raise click.BadParameter(
                f"{item!r} is not PART=MINUTES with PART 1, 2 or 3", param_hint="--extra-minutes"
            )
        extra[int(part)] = int(minutes)
    return extra


# ---- cohort ---------------------------------------------------------------------------


@click.group("cohort")
def cohort() -> None:
    """A cohort of exams in the roster: who sits which exam on which platform.

    \b
      proctor cohort add y3-dec alice --extra-minutes 1=30   # enrolls basecamp-alice
      proctor cohort list y3-dec
      proctor exam start --cohort y3-dec                     # then end-part, extend, end

    Needs the proctor's key (PROCTOR_SIGNING_KEY, PROCTOR_SIGNING_KEY_ID) and the roster
    master secret (PROCTOR_ROSTER_SECRET): adding prints the platform's credentials once.
    """


@cohort.command("add")
@click.argument("name")
@click.argument("candidate")
@click.option("--platform", help="The candidate's platform id [basecamp-CANDIDATE].")
@click.option("--exam", "exam_id", help="The exam id [NAME-CANDIDATE].")
@click.option(
    "--extra-minutes",
    multiple=True,
    metavar="PART=N",
    help="Accommodation: N extra minutes in part PART, sent as part.extended at exam start "
    "(repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as one JSON line.")
@connection_options(prefix_default=None)
def cohort_add(name: str, candidate: str, **flags: Any) -> None:
    """Enroll CANDIDATE in cohort NAME (or update their seat) and print the credentials."""
    from services.trust.cli import _keyring, _print_credentials, _signer
    from services.trust.credentials import master_from_env
    from services.trust.roster import publish_entries, read_roster

    platform = flags["platform"] or f"basecamp-{candidate}"
    exam_id = flags["exam_id"] or f"{name}-{candidate}"
    extra = _parse_extra(flags["extra_minutes"])
    try:
        master = master_from_env()
        assert master is not None
        signer = _signer({})
        settings = _settings(flags)
        held = read_roster(settings, _keyring(signer)).get(platform)
        if held is not None and held.cohort and held.cohort != name:
            raise click.ClickException(
                f"{platform} sits in cohort {held.cohort!r}; revoke it there first "
                "(`proctor roster revoke`) or use another --platform"
            )
        entry = RosterEntry(
            platform,
            exam_id,
            candidate,
            held.generation if held is not None else 1,
            False,
            extra or (dict(held.extra_minutes) if held is not None else {}),
            int(time.time() * 1000),
            cohort=name,
        )
        publish_entries(settings, [entry], signer)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "enrolled" if held is None else "updated"
    acc = ", ".join(f"part {p} +{m} min" for p, m in sorted(entry.extra_minutes.items()))
    click.echo(
        f"{verb} {candidate} in cohort {name}: platform {platform}, exam {exam_id}"
        + (f", accommodations: {acc}" if acc else ""),
        err=True,
    )
    _print_credentials(master, entry, flags["as_json"])


@cohort.command("list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per exam.")
@connection_options(prefix_default=None)
def cohort_list(name: str | None, as_json: bool, **flags: Any) -> None:
    """List the cohorts, or the exams of cohort NAME (verified roster records only)."""
    from services.cohort.lifecycle import cohorts

    try:
        groups = cohorts(_roster(_settings(flags)).values())
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    if name is not None:
        if name not in groups:
            known = ", ".join(sorted(groups)) or "none yet"
            raise click.ClickException(f"no cohort {name!r} (cohorts: {known})")
        groups = {name: groups[name]}
    if not groups:
        click.echo("no cohort in the roster yet (`proctor cohort add NAME CANDIDATE`)", err=True)
    for cname, entries in sorted(groups.items()):
        if not as_json:
            click.echo(f"cohort {cname}: {len(entries)} exam(s)")
        for e in entries:
            extra = {str(k): v for k, v in sorted(e.extra_minutes.items())}
            if as_json:
                row = {
                    "cohort": cname,
                    "candidate_id": e.candidate_id,
                    "platform_id": e.platform_id,
                    "exam_id": e.exam_id,
                    "extra_minutes": extra,
                    "revoked": e.revoked,
                }
                click.echo(json.dumps(row))
            else:
                acc = ",".join(f"{k}=+{v}" for k, v in extra.items()) or "-"
                state = "revoked" if e.revoked else "active"
                click.echo(
                    f"  {e.candidate_id}\t{e.platform_id}\t{e.exam_id}\textra {acc}\t{state}"
                )


# ---- the actions ---------------------------------------------------------------------


def _who(func: Any) -> Any:
    func = click.option(
        "--candidate",
        "candidates",
        multiple=True,
        metavar="ID",
        help="A candidate (or platform) id; repeatable. Without it: the whole --cohort.",
    )(func)
    func = click.option("--cohort", "cohort_name", help="The cohort (see `proctor cohort list`).")(
        func
    )
    func = click.option(
        "--at",
        metavar="RFC3339",
        help="Event time of the action [default: now]; for rehearsals and replays of a "
        "schedule (the worker refuses times past now plus its skew allowance).",
    )(func)
    return connection_options(prefix_default=None)(func)


def _when(at: str | None) -> int:
    if not at:
        return int(time.time() * 1000)
    from services.core.events import rfc3339_to_ms

    try:
        return rfc3339_to_ms(at)
    except ValueError as exc:
        raise click.BadParameter(
            f"{at!r} is not an RFC 3339 time like 2026-11-27T09:00:00Z", param_hint="--at"
        ) from exc


def run_action(flags: dict[str, Any], what: str, build: Build) -> None:
    """Select the exams, build each one's events, sign and publish them with progress."""
    from services.cohort.lifecycle import select
    from services.publisher.publisher import Publisher
    from services.settings import load_settings
    from services.tracing import setup_service_tracing
    from services.trust.producing import RecordAuth

    try:
        setup_service_tracing("proctor-cohort", load_settings().telemetry)
        auth = RecordAuth.from_env()
        if auth is None or auth.signer is None or not auth.is_proctor:
            raise click.ClickException(
                "exam actions are signed by the proctor: set PROCTOR_SIGNING_KEY and "
                "PROCTOR_SIGNING_KEY_ID to a key from `proctor keys generate --role proctor`"
            )
        settings = _settings(flags)
        chosen = select(
            _roster(settings), cohort=flags.get("cohort_name"), candidates=flags["candidates"]
        )
        for platform in chosen.skipped:
            click.echo(f"skipped {platform}: revoked", err=True)
        now = _when(flags.get("at"))
        plan = [(e, build(e, now)) for e in chosen.entries]
        total = len(plan)
        with Publisher(settings, auth=auth, say=lambda s: click.echo(s, err=True)) as pub:
            for n, (entry, events) in enumerate(plan, start=1):
                deliveries = pub.publish_many(events)
                where = ", ".join(f"{d.type} @{d.partition}/{d.offset}" for d in deliveries)
                click.echo(
                    f"[{n}/{total}] {what} {entry.candidate_id} ({entry.platform_id}, "
                    f"exam {entry.exam_id}): {where}"
                )
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("exam")
def exam() -> None:
    """Run exams: start, end a part early, extend a part, end, for a candidate or a cohort.

    Every action is a control event signed by the proctor (PROCTOR_SIGNING_KEY) on
    exam.control. The grader closes a part's time box at the earliest of its limit plus
    every extension, the part's `end-part`, and the exam's `end` (rubric.md "Part windows").

    \b
      proctor exam start --cohort y3-dec                 # exam.started + Part 1 + accommodations
      proctor exam extend --candidate alice --part 1 --minutes 15 --reason "VPN outage"
      proctor fault inject --cohort y3-dec --layer trino --kind stale_statistics \\
          --target lake.orders_enriched                  # opens Part 2
      proctor exam end-part --cohort y3-dec --part 2
      proctor exam start-part --cohort y3-dec --part 3
      proctor exam end --cohort y3-dec
    """


@exam.command("start")
@click.option("--rubric-version", default="1", show_default=True, help="Rubric version to grade.")
@click.option("--rubric", "rubric_id", default="y3-final", show_default=True, help="Rubric id.")
@_who
def exam_start(rubric_id: str, rubric_version: str, **flags: Any) -> None:
    """Start the exams: exam.started, Part 1's part.started, and each roster accommodation
    as a part.extended. Running it again changes nothing (the same event ids)."""
    from services.cohort.lifecycle import start

    run_action(
        flags,
        "started",
        lambda e, now: start(e, now, rubric_id=rubric_id, rubric_version=rubric_version),
    )


@exam.command("start-part")
@click.option(
    "--part",
    type=int,
    required=True,
    help="The part to open (3; Part 2 opens with `proctor fault inject`).",
)
@_who
def exam_start_part(part: int, **flags: Any) -> None:
    """Open a later part now (part.started)."""
    from services.cohort.lifecycle import start_part

    run_action(flags, f"started part {part} of", lambda e, now: start_part(e, part, now))


@exam.command("end-part")
@click.option("--part", type=int, required=True, help="The part to end now (1, 2 or 3).")
@_who
def exam_end_part(part: int, **flags: Any) -> None:
    """End a part now (part.ended): its time box closes; evidence after it does not count."""
    from services.cohort.lifecycle import end_part

    run_action(flags, f"ended part {part} of", lambda e, now: end_part(e, part, now))


@exam.command("extend")
@click.option("--part", type=int, required=True, help="The part to extend (1, 2 or 3).")
@click.option("--minutes", type=int, required=True, help="Minutes to add (1 to 1440).")
@click.option("--reason", required=True, help="Why, for the record (e.g. 'VPN outage').")
@_who
def exam_extend(part: int, minutes: int, reason: str, **flags: Any) -> None:
    """Add minutes to a part's time box (part.extended); extensions of a part add up.
    An extension sent after the part's box closed does not reopen it."""
    from services.cohort.lifecycle import extend

    run_action(
        flags,
        f"extended part {part} by {minutes} min for",
        lambda e, now: extend(e, part, minutes, reason, now),
    )


@exam.command("end")
@_who
def exam_end(**flags: Any) -> None:
    """End the exams now (exam.ended): every open time box closes."""
    from services.cohort.lifecycle import end

    run_action(flags, "ended", end)


@click.group("fault")
def fault() -> None:
    """Inject the Part 2 incident (fault.injected opens Part 2's time box)."""


@fault.command("inject")
@click.option("--layer", required=True, help="cache, trino, iceberg, dbt, spark_airflow or cdc.")
@click.option("--kind", required=True, help="A fault kind of that layer (rubric.md, Part 2).")
@click.option("--target", required=True, help="The faulted dataset or asset.")
@click.option("--fault-id", default="fault-1", show_default=True, help="The fault's id.")
@click.option("--note", default="", help="A note for the record.")
@_who
def fault_inject(
    layer: str, kind: str, target: str, fault_id: str, note: str, **flags: Any
) -> None:
    """Record the fault injected on each selected platform (signed fault.injected)."""
    from services.cohort.lifecycle import inject_fault

    run_action(
        flags,
        f"injected {layer}/{kind} into",
        lambda e, now: inject_fault(e, layer, kind, target, now, fault_id=fault_id, note=note),
    )


# ---- overrides ----------------------------------------------------------------------


@click.group("grade")
def grade() -> None:
    """Override a criterion's grade or record an appeal's decision (signed, with a reason).

    The grader applies it at once: the criterion takes the state given, its reason says
    who decided, when and why, then what the grader had decided; `--state graded` withdraws
    an earlier override. Both are kept on exam.control and replayed like any event.

    \b
      proctor grade override --candidate alice --criterion p2.root_cause --state partial \\
          --reason "named the layer in the call, not in the form" --by jane
      proctor grade appeal --candidate bob --criterion p3.senior_tone --state met \\
          --reason "appeal upheld: the opening praises the design" --by review-board
    """


def _decision_options(func: Any) -> Any:
    import getpass

    func = click.option(
        "--by",
        default=lambda: getpass.getuser(),
        show_default="your user name",
        help="Who decided (shown beside the grade).",
    )(func)
    func = click.option("--reason", required=True, help="Why, in a sentence.")(func)
    func = click.option(
        "--state",
        required=True,
        type=click.Choice(["met", "partial", "failed", "graded"]),
        help="The state to set; graded withdraws an earlier override.",
    )(func)
    return click.option(
        "--criterion", "criterion_id", required=True, help="The criterion id, e.g. p2.root_cause."
    )(func)


def _decide(kind: str, flags: dict[str, Any]) -> None:
    from services.cohort.lifecycle import override

    if not flags["candidates"]:
        raise click.UsageError("name the candidate (--candidate): a grade is one person's")
    cid, state, reason, by = (flags.pop(k) for k in ("criterion_id", "state", "reason", "by"))
    run_action(
        flags,
        f"{kind} {cid} -> {state} for",
        lambda e, now: override(e, cid, state, reason, by, now, kind=kind),
    )


@grade.command("override")
@_decision_options
@_who
def grade_override(**flags: Any) -> None:
    """Set one criterion of a candidate's exam (grade.overridden, kind override)."""
    _decide("override", flags)


@grade.command("appeal")
@_decision_options
@_who
def grade_appeal(**flags: Any) -> None:
    """Record the decision on a candidate's appeal (grade.overridden, kind appeal)."""
    _decide("appeal", flags)


# ---- reports --------------------------------------------------------------------------


@click.command("report")
@click.argument("recording", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the reports (created).",
)
@click.option(
    "--candidate",
    "candidates",
    multiple=True,
    metavar="ID",
    help="Only this candidate (or platform); repeatable. Default: every exam recorded.",
)
@click.option(
    "--verify", is_flag=True, help="Check every control event's signature first (replay --verify)."
)
@click.option(
    "--pdf",
    is_flag=True,
    help="Also print each candidate's HTML page to PDF with headless Chromium "
    "(apt-get install chromium, or --chromium).",
)
@click.option(
    "--chromium",
    envvar="PROCTOR_CHROMIUM",
    metavar="PATH",
    help="The Chromium binary for --pdf [PROCTOR_CHROMIUM; default: chromium on PATH].",
)
def report_cmd(
    recording: Path,
    out_dir: Path,
    candidates: tuple[str, ...],
    verify: bool,
    pdf: bool,
    chromium: str | None,
) -> None:
    """Grade RECORDING (from `proctor record`) and write a report per candidate, in Markdown
    and HTML (every criterion's state, score, reason, evidence; review notes), optionally
    PDF, and the cohort's cohort.csv and cohort.parquet."""
    from services.cohort.report import write_reports
    from services.offline.cli import run_judge
    from services.offline.replay import replay_file
    from services.rubrics import resolver

    try:
        if verify:
            from services.trust.keys import Keyring
            from services.trust.recording import verify_recording

            check = verify_recording(recording, Keyring.from_env())
            if not check.ok:
                raise click.ClickException(
                    f"{len(check.refused)} control events do not verify: "
                    + "; ".join(check.refused[:3])
                )
            click.echo(f"verified {check.verified} control event signatures", err=True)
        result = replay_file(recording, resolver(), run_judge())
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    chosen = [
        r
        for r in result.results
        if not candidates or r.candidate_id in candidates or r.platform_id in candidates
    ]
    if not chosen:
        raise click.ClickException(
            f"no exam of {', '.join(candidates) or 'any candidate'} in {recording}"
        )
    if pdf:
        from services.cohort.pdf import chromium_binary

        try:
            chromium_binary(chromium)  # before any report is written: found missing first
        except ProctorError as exc:
            raise click.ClickException(str(exc)) from exc
    written = write_reports(chosen, out_dir)
    for n, path in enumerate(written, start=1):
        click.echo(f"[{n}] wrote {path}")
    if pdf:
        from services.cohort.pdf import html_to_pdf

        pages = [p for p in written if p.suffix == ".html"]
        for n, page in enumerate(pages, start=1):
            try:
                out = html_to_pdf(page, page.with_suffix(".pdf"), chromium)
            except ProctorError as exc:
                raise click.ClickException(str(exc)) from exc
            click.echo(f"[pdf {n}/{len(pages)}] wrote {out}")
    if result.refused:
        click.echo(f"{len(result.refused)} lines refused (graded nothing)", err=True)


# ---- record ----------------------------------------------------------------------------


@click.command("record")
@click.argument("out", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--all", "everyone", is_flag=True, help="Every platform in the roster.")
@_who
def record_cmd(out: Path, everyone: bool, **flags: Any) -> None:
    """Record a live exam or a cohort from the topics into OUT (JSON Lines).

    Reads every input topic up to its end now, keeps the selected platforms' records that
    the worker would admit (PROCTOR_TRUSTED_KEYS, PROCTOR_ROSTER_SECRET: the same checks),
    keeps each control event's signature in the file, and verifies the file at the end.
    Grade it with `proctor replay --verify OUT`; refused records are listed, not written.
    """
    from services.cohort.lifecycle import select
    from services.cohort.record import record
    from services.trust.admission import TrustAdmission
    from services.trust.keys import Keyring
    from services.trust.recording import verify_recording

    try:
        settings = _settings(flags)
        keyring = Keyring.from_env()
        from services.trust.roster import read_roster

        roster = read_roster(settings, keyring)
        if everyone:
            platforms = sorted(roster)
        else:
            chosen = select(roster, cohort=flags.get("cohort_name"), candidates=flags["candidates"])
            platforms = [e.platform_id for e in chosen.entries]
        click.echo(f"recording {len(platforms)} platform(s): {', '.join(platforms)}", err=True)
        admission = TrustAdmission.from_env(roster)
        report = record(
            settings, platforms, admission, out, progress=lambda s: click.echo(s, err=True)
        )
        for line in [*report.refused[:20], *report.undecodable[:20]]:
            click.echo(f"left out {line}", err=True)
        check = verify_recording(out, keyring)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    if not check.ok:
        raise click.ClickException(
            f"{out} holds {len(check.refused)} control events that do not verify: "
            + "; ".join(check.refused[:3])
        )
    click.echo(
        f"wrote {report.written} events to {out}; verified {check.verified} control event "
        f"signatures; left out {len(report.refused)} refused and "
        f"{len(report.undecodable)} undecodable records"
    )


__all__ = ["cohort", "exam", "fault", "grade", "record_cmd", "report_cmd", "run_action"]
