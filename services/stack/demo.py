"""``proctor demo``: a whole simulated exam on the local stack, graded live, on the scoreboard.

Steps: the stack up (idempotent), schemas registered and topics created, the scoreboard
up (Superset and the health sampler; ``--no-superset`` keeps only the sampler), the grader
worker started as a subprocess (or an already running one reused), then the simulator
plays a few candidates through the broker while a live table of their grades, read
back from Trino, fills the terminal. Ctrl-C stops the simulator and the worker this demo
started; the stack and the scoreboard keep running (`proctor scoreboard down`,
`proctor stack down` stop them).

``--once`` is for tests and CI: it exits when every simulated exam has ended and Trino's
``grading.exam_scores`` holds exactly what an offline replay of the same run gives,
criterion for criterion (exit 0), or when ``--timeout`` passes first (exit 1, with the
differences).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click
import httpx
from rich.console import Console
from rich.text import Text

from services.contract.settings import ClientSettings
from services.core.events import Event, ms_to_rfc3339
from services.errors import ProctorError, StackError
from services.stack.config import StackConfig

console = Console()
WORKER_READY_S = 180.0


def _say(message: str) -> None:
    console.print(f"[bold]\\[demo][/bold] {message}", highlight=False)


@dataclass(frozen=True, slots=True)
class Expected:
    """What an offline replay of the run says each exam's criteria end as."""

    states: Mapping[str, Mapping[str, tuple[str, float]]]  # exam_id -> criterion -> (state, score)


def expected_from_replay(events: Sequence[Event]) -> Expected:
    """Grade the run offline with the same engine and judge the worker uses."""
    from services.judge.default import default_judge
    from services.offline.replay import replay_events
    from services.rubrics import resolver

    result = replay_events(events, resolver(), default_judge())
    return Expected(
        {
            r.exam_id: {c.criterion_id: (c.state, float(c.score)) for c in r.criteria}
            for r in result.results
        }
    )


def live_states(conn: Any, exam_ids: Iterable[str]) -> dict[str, dict[str, tuple[str, float]]]:
    """The latest state and score of every criterion of ``exam_ids`` in grading.exam_scores."""
    wanted = sorted(set(exam_ids))
    cur = conn.cursor()
    cur.execute(
        "SELECT exam_id, criterion_id, state, score FROM iceberg.grading.exam_scores "
        "WHERE exam_id IN (" + ", ".join("?" for _ in wanted) + ")",
        wanted,
    )
    out: dict[str, dict[str, tuple[str, float]]] = {}
    for exam_id, criterion_id, state, score in cur.fetchall():
        out.setdefault(exam_id, {})[criterion_id] = (state, float(score))
    return out


def differences(
    expected: Expected, live: Mapping[str, Mapping[str, tuple[str, float]]]
) -> list[str]:
    """Every criterion where Trino and the replay disagree (a missing row counts as pending)."""
    out: list[str] = []
    for exam_id, criteria in sorted(expected.states.items()):
        got = live.get(exam_id, {})
        for criterion, (state, score) in sorted(criteria.items()):
            have = got.get(criterion, ("pending", 0.0))
            if have[0] != state or abs(have[1] - score) > 1e-9:
                out.append(
                    f"{exam_id} {criterion}: live {have[0]} {have[1]:g}, replay {state} {score:g}"
                )
    return out


@dataclass
class Worker:
    """The grader worker as a child process of the demo (or one that was already running)."""

    log_path: Path
    http_port: int = 9464
    proc: subprocess.Popen[bytes] | None = None
    reused: bool = False
    #: variables the worker gets beyond the demo's environment
    extra_env: dict[str, str] = field(default_factory=dict)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def answering(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        if self.answering():
            self.reused = True
            _say(f"a grader worker already answers at {self.url}: using it")
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PROCTOR_HTTP_PORT": str(self.http_port), **self.extra_env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "worker"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        _say(f"grader worker started (pid {self.proc.pid}, log {self.log_path})")

    def wait_ready(self, timeout_s: float = WORKER_READY_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(
                    f"the grader worker exited with code {self.proc.returncode}; "
                    f"see {self.log_path}:\n{self.tail()}"
                )
            if self.ready():
                return
            time.sleep(0.5)
        raise StackError(
            f"the grader worker is not ready after {timeout_s:.0f}s ({self.url}/readyz); "
            f"see {self.log_path}:\n{self.tail()}"
        )

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _say(f"stopping the grader worker (pid {self.proc.pid})")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


def prepare_stack(config: StackConfig) -> None:
    """Stack up, schemas registered, topics created: all idempotent."""
    from services.contract.registry import Registry
    from services.contract.schemas import load_contract
    from services.contract.topics import admin_client, ensure_topics
    from services.contract.wire import registry_client
    from services.stack.manager import StackManager

    StackManager(config, progress=lambda m: _say(m)).up()
    settings = ClientSettings.from_env()
    client = registry_client(
        settings.registry_url, basic_auth_user_info=settings.registry_user_info
    )
    registered = Registry(
        client, settings.registry_url, load_contract(), settings.topic_prefix
    ).register_all()
    _say(f"{len(registered)} schemas registered")
    extra = {k: str(v) for k, v in settings.kafka_security.items()}
    results = ensure_topics(admin_client(settings.bootstrap, extra), prefix=settings.topic_prefix)
    bad = [r for r in results if r.status == "mismatch"]
    if bad:
        raise StackError("; ".join(f"topic {r.name}: {r.detail}" for r in bad))
    _say(f"{len(results)} topics ready")


@click.command("demo")
@click.option(
    "-c",
    "--candidate",
    "candidates",
    multiple=True,
    metavar="NAME=SCENARIO",
    help="Candidates to simulate (default: alice clean pass, bob manual apply, carol wrong "
    "diagnosis, dave late diagnosis).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Times real time (600: the ~7-hour exam in ~45 s).",
)
@click.option(
    "--stagger", "stagger_minutes", type=click.FloatRange(min=0), default=2.0, show_default=True
)
@click.option("--no-superset", is_flag=True, help="Skip Superset (quicker): terminal table only.")
@click.option(
    "--once",
    is_flag=True,
    help="Exit when every exam has ended and Trino equals the offline replay (tests, CI).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=10),
    default=900.0,
    show_default=True,
    help="With --once: give up (exit 1) after this many seconds.",
)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(
    candidates: tuple[str, ...],
    speed: float,
    stagger_minutes: float,
    no_superset: bool,
    once: bool,
    timeout: float,
    seed: int,
) -> None:
    """A whole simulated exam on the local stack, graded live, on the scoreboard."""
    config = StackConfig.from_env()
    started = time.monotonic()
    try:
        code = run_demo(
            config, candidates, speed, stagger_minutes, no_superset, once, timeout, seed
        )
    except ProctorError as exc:
        first, _, rest = str(exc).partition("\n")
        console.print(f"[red]error:[/red] {first}", highlight=False)
        if rest:
            console.print(rest, highlight=False, markup=False)
        sys.exit(1)
    _say(f"finished in {time.monotonic() - started:.0f}s")
    sys.exit(code)


DEFAULT_SKEW_S = 120


def run_demo(
    config: StackConfig,
    candidates: tuple[str, ...],
    speed: float,
    stagger_minutes: float,
    no_superset: bool,
    once: bool,
    timeout: float,
    seed: int,
) -> int:
    from services.publisher.publisher import Publisher
    from services.publisher.sim_cli import candidate_specs
    from services.publisher.simulator import (
        Player,
        default_start,
        remember_event_ts,
        simulation_lead_s,
    )
    from services.publisher.timeline import plan_candidates, run_events
    from services.scoreboard.watch import fetch_rows, render
    from services.stack.catalog import trino_connect
    from services.stack.scoreboard import login_hint, scoreboard_up

    prepare_stack(config)
    from services.trust.local import ensure_local_trust

    # Keys and the roster secret of the local stack (docs/trust.md), made once, 0600.
    for name, value in ensure_local_trust(config.state_dir / "keys").items():
        os.environ.setdefault(name, value)
    hint = ""
    for component in scoreboard_up(config, progress=_say, superset=not no_superset):
        if hasattr(component, "dashboard_url"):
            hint = login_hint(component)
            _say(hint)
    demo_dir = config.state_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    worker = Worker(demo_dir / "worker.log", int(os.environ.get("PROCTOR_HTTP_PORT", "9464")))
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim_thread: threading.Thread | None = None
    try:
        plan = plan_candidates(
            candidate_specs(candidates, None, None),
            default_start(config.state_dir),
            stagger_minutes,
        )
        events = run_events(plan, seed)
        lead_s = simulation_lead_s(events, speed)
        if lead_s > DEFAULT_SKEW_S:
            # At speed x the simulated clock runs ahead of the broker's; the demo's own
            # worker allows that lead (docs/trust.md: a worker in production keeps 120 s).
            worker.extra_env["PROCTOR_MAX_SKEW_S"] = str(int(lead_s) + 300)
            _say(
                f"the simulation runs up to {lead_s / 60:.0f} min ahead of the clock at {speed:g}x: "
                f"the demo's worker allows event times up to {int(lead_s) + 300} s ahead"
            )
        worker.start()
        worker.wait_ready()
        _say("grader worker ready")
        exam_ids = [c.exam_id for c in plan]
        recording = demo_dir / f"run-{plan[0].exam_id.split('-', 1)[1].rsplit('-', 1)[0]}.jsonl"
        _say(
            f"simulating {len(plan)} candidates ({', '.join(f'{c.name}: {c.scenario}' for c in plan)}), "
            f"{len(events):,} events at {speed:g}x; recording {recording}"
        )
        state: dict[str, Any] = {
            "sent": 0,
            "total": len(events),
            "ts": None,
            "error": None,
            "done": False,
        }
        settings = ClientSettings.from_env()

        def simulate() -> None:
            try:
                with Publisher(settings) as publisher, recording.open("w", encoding="utf-8") as fh:

                    def progress(p: Any) -> None:
                        state.update(sent=p.sent, ts=p.event_ts_ms)

                    report = Player(
                        events, publisher, speed=speed, record=fh, stop=stop, on_progress=progress
                    ).run()
                if report.last_ts_ms is not None:
                    remember_event_ts(config.state_dir, report.last_ts_ms)
            except Exception as exc:  # shown in the live view, then the demo stops
                state["error"] = f"{type(exc).__name__}: {exc}"
                stop.set()
            finally:
                state["done"] = True

        sim_thread = threading.Thread(target=simulate, name="simulator", daemon=True)
        sim_thread.start()
        expected = expected_from_replay(events) if once else None
        conn = trino_connect(config)
        deadline = time.monotonic() + timeout
        outcome = 0
        last_diff: list[str] = []
        from rich.console import Group
        from rich.live import Live

        with Live(console=console, refresh_per_second=2) as live:
            while not stop.is_set():
                stamp = time.strftime("%H:%M:%S")
                try:
                    rows = fetch_rows(conn, exam_ids)
                    table = render(rows, note=f"from Trino at {stamp}; Ctrl-C stops the demo")
                except StackError as exc:
                    rows = []
                    table = render([], note=f"{stamp}: {exc}")
                line = Text(
                    f"simulator: {state['sent']:,}/{state['total']:,} events"
                    + (f", event time {ms_to_rfc3339(state['ts'])}" if state["ts"] else "")
                    + (" (done)" if state["done"] else ""),
                    style="dim",
                )
                parts: list[Any] = [table, line]
                if hint:
                    parts.append(Text(hint, style="bold"))
                live.update(Group(*parts))
                if once and state["done"] and expected is not None and state["error"] is None:
                    try:
                        last_diff = differences(expected, live_states(conn, exam_ids))
                    except Exception as exc:  # Trino not ready for this query yet
                        last_diff = [f"cannot read grading.exam_scores yet: {exc}"]
                    if not last_diff:
                        break
                if once and time.monotonic() > deadline:
                    outcome = 1
                    break
                stop.wait(2.0)
        console.line()
        if state["error"]:
            raise StackError(f"the simulator failed: {state['error']}")
        if once:
            if outcome:
                shown = "\n".join(last_diff[:20]) or "the simulator had not finished"
                where = "the worker that was already running" if worker.reused else worker.log_path
                raise StackError(
                    f"Trino did not match the offline replay within {timeout:.0f}s "
                    f"({len(last_diff)} differences; worker log: {where}):\n{shown}"
                )
            _say(
                f"all {len(exam_ids)} exams ended and grading.exam_scores equals the offline "
                f"replay, criterion for criterion ({sum(len(v) for v in expected.states.values()) if expected else 0} criteria)"
            )
        return outcome
    finally:
        stop.set()
        if sim_thread is not None:
            sim_thread.join(30)
        if not worker.reused:
            worker.stop()
        signal.signal(signal.SIGINT, previous)
        if hint:
            _say(f"the scoreboard keeps running: {hint}; `proctor scoreboard down` stops it")
