"""``proctor simulate``: candidate platforms through a whole exam, on the real broker.

proctor simulate                                   # the demo's four candidates
proctor simulate -c erin=clean_pass -c finn=no_100k --speed 500
proctor simulate -c gus=wrong_diagnosis:fault=cdc/dropped_events,self_grade=70
proctor simulate --count 20 --scenario clean_pass --stagger 1
proctor simulate --no-publish --record exam.jsonl  # only the recording
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from services.contract.settings import BOOTSTRAP_ENV, PREFIX_ENV, REGISTRY_ENV, ClientSettings
from services.core.events import ms_to_rfc3339, rfc3339_to_ms
from services.errors import ProctorError
from services.publisher.simulator import Progress, default_start, play
from services.publisher.timeline import (
    DEMO_CANDIDATES,
    EXAM_MINUTES,
    Background,
    Candidate,
    describe_presets,
    plan_candidates,
    run_events,
)
from services.settings import Settings, load_settings
from services.tracing import setup_service_tracing

err = Console(stderr=True)


def candidate_specs(
    given: tuple[str, ...], count: int | None, scenario: str | None
) -> list[tuple[str, str]]:
    """(name, scenario) pairs from ``-c NAME=SCENARIO`` options or ``--count/--scenario``."""
    if given and (count or scenario):
        raise click.UsageError(
            "give candidates with -c NAME=SCENARIO, or --count/--scenario, not both"
        )
    if given:
        out = []
        for item in given:
            name, eq, spec = item.partition("=")
            if not eq or not name or not spec:
                raise click.BadParameter(
                    f"{item!r}: write NAME=SCENARIO, e.g. alice=clean_pass", param_hint="-c"
                )
            out.append((name.strip(), spec.strip()))
        return out
    if count is not None or scenario is not None:
        return [(f"cand-{i + 1:03d}", scenario or "clean_pass") for i in range(count or 1)]
    return list(DEMO_CANDIDATES)


def candidates_table(candidates: list[Candidate]) -> Table:
    table = Table(title="simulated candidates")
    for col in ("candidate", "platform", "exam", "scenario", "fault", "starts (event time)"):
        table.add_column(col)
    for c in candidates:
        table.add_row(
            c.name,
            c.platform,
            c.exam_id,
            c.scenario,
            f"{c.choices.layer}/{c.choices.kind}",
            ms_to_rfc3339(c.start_ms),
        )
    return table


@click.command("simulate")
@click.option(
    "-c",
    "--candidate",
    "candidates",
    multiple=True,
    metavar="NAME=SCENARIO",
    help="A candidate and the story they play (repeat). SCENARIO is PRESET[:key=value,...].",
)
@click.option("--count", type=click.IntRange(1, 500), help="Simulate this many candidates...")
@click.option("--scenario", help="...all playing this scenario (default clean_pass).")
@click.option(
    "--speed",
    type=click.FloatRange(min=0),
    default=1000.0,
    show_default=True,
    help="Times real time: 1000 plays the ~7 h exam in ~26 s; 0 sends everything at once.",
)
@click.option(
    "--start", "start", metavar="TS", help="Event time of the first exam.started (RFC 3339)."
)
@click.option(
    "--stagger",
    "stagger_minutes",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Minutes of event time between two candidates' starts.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of ids and jitter.")
@click.option(
    "--poll-seconds",
    type=click.FloatRange(1, 60),
    default=30.0,
    show_default=True,
    help="How often each simulated collector reports (heartbeats, offsets).",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the run as a JSON Lines recording (exactly what was sent).",
)
@click.option("--no-publish", is_flag=True, help="Send nothing: only write --record.")
@click.option("--list-scenarios", is_flag=True, help="Describe the scenario presets and exit.")
@click.option("--bootstrap", envvar=BOOTSTRAP_ENV, help=f"Kafka bootstrap [env {BOOTSTRAP_ENV}].")
@click.option(
    "--registry-url", envvar=REGISTRY_ENV, help=f"Schema registry URL [env {REGISTRY_ENV}]."
)
@click.option("--prefix", envvar=PREFIX_ENV, default="", help=f"Topic prefix [env {PREFIX_ENV}].")
def simulate(**opts: Any) -> None:
    """Simulate candidate platforms through the whole exam, graded live by the worker.

    Each candidate's platform emits what its collectors and its proctor would (control
    events, signals every poll, heartbeats), paced in event time, published through the
    broker keyed by platform_id. Ctrl-C stops between two batches.
    """
    if opts["list_scenarios"]:
        table = Table("scenario", "story")
        for name, about in describe_presets():
            table.add_row(name, about)
        Console().print(table)
        err.print(
            "options after PRESET: (e.g. wrong_diagnosis:fault=cdc/dropped_events,self_grade=70) "
            "fault=LAYER/KIND diagnosis=right|partial|wrong|symptom|none diagnosis_at=MIN "
            "manual_apply=part1|part2|none reach_100k=BOOL postmortem=good|blaming|no_test|none "
            "review=strong|weak|none self_grade=PCT|none silent=COLLECTOR+COLLECTOR",
            highlight=False,
        )
        return
    if opts["no_publish"] and opts["record"] is None:
        raise click.UsageError("--no-publish sends nothing: give --record FILE")
    config = load_settings(
        overrides={
            "kafka": {"bootstrap": opts["bootstrap"], "topic_prefix": opts["prefix"]},
            "registry": {"url": opts["registry_url"]},
        }
    )
    try:
        specs = candidate_specs(opts["candidates"], opts["count"], opts["scenario"])
        start = _start(opts["start"], config)
        plan = plan_candidates(specs, start, opts["stagger_minutes"])
        events = run_events(plan, opts["seed"], Background(poll_seconds=opts["poll_seconds"]))
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    err.print(candidates_table(plan))
    minutes = EXAM_MINUTES + opts["stagger_minutes"] * (len(plan) - 1)
    wall = minutes * 60 / opts["speed"] if opts["speed"] else 0
    err.print(
        f"{len(events):,} events over {minutes:.0f} min of event time"
        + (
            f", ~{wall:.0f} s at {opts['speed']:g}x"
            if opts["speed"] and not opts["no_publish"]
            else ""
        ),
        highlight=False,
    )
    try:
        report = _run(events, opts, config)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    topics = ", ".join(f"{n:,} to {t}" for t, n in sorted(report.by_topic.items()))
    what = "stopped after" if report.stopped else "sent"
    click.echo(
        f"{what} {report.sent:,} of {report.total:,} events in {report.elapsed_s:.1f}s"
        + (f": {topics}" if topics else ""),
        err=True,
    )
    if opts["record"] is not None:
        click.echo(f"recording: {opts['record']}", err=True)


def _start(given: str | None, config: Settings) -> int:
    if given is None:
        return default_start(config.stack_dir)
    try:
        return rfc3339_to_ms(given)
    except ValueError as exc:
        raise click.BadParameter(
            f"{given!r} is not an RFC 3339 time like 2026-11-27T09:00:00.000Z", param_hint="--start"
        ) from exc


def _run(events: list[Any], opts: dict[str, Any], config: Settings) -> Any:
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def interrupted(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, interrupted)
    try:
        if opts["no_publish"]:
            return play(events, speed=0, sink=None, record=opts["record"], stop=stop)
        from services.publisher.publisher import Publisher
        from services.trust.producing import RecordAuth

        settings = ClientSettings.of(config)
        auth = RecordAuth.from_env(config.trust.as_env())
        setup_service_tracing("proctor-simulator", config.telemetry)
        last = [0.0]

        def progress(p: Progress) -> None:
            if p.elapsed_s - last[0] >= 2 or p.sent == p.total:
                last[0] = p.elapsed_s
                err.print(
                    f"  {p.sent:>7,}/{p.total:,} events, event time {ms_to_rfc3339(p.event_ts_ms)}",
                    highlight=False,
                )

        from services.publisher.simulator import simulation_lead_s

        lead_s = simulation_lead_s(events, opts["speed"])
        if lead_s > 120:
            err.print(
                f"warning: at {opts['speed']:g}x the event times run up to {lead_s / 60:.0f} min "
                "ahead of the clock; a worker dead-letters records dated more than "
                "PROCTOR_MAX_SKEW_S (120 s) ahead as from_the_future: give --start in the past "
                "or raise the worker's allowance",
                highlight=False,
            )

        def say(text: str) -> None:
            err.print(text, highlight=False)

        with Publisher(settings, auth=auth, say=say) as publisher:
            return play(
                events,
                speed=opts["speed"],
                sink=publisher,
                record=opts["record"],
                state_dir=config.stack_dir,
                stop=stop,
                on_progress=progress,
            )
    finally:
        signal.signal(signal.SIGINT, previous)
