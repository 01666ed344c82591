"""One rehearsal: scripted candidates on real systems, faults injected for real, graded
live by the worker, reported step by step.

Each (candidate, fault) pair is one exam on its own platform with its own lakehouse
namespace, so a fault injected for one never touches another. Steps run in exam order;
the grades are read back from Trino once every exam has ended.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyiceberg.catalog import Catalog

from services.collectors import trino_events
from services.collectors.polling import Poller
from services.errors import StackError
from services.exam_builder import ASSETS, STRONG_REVIEW, postmortem_text
from services.platform.dbt import MODEL
from services.platform.flink import Checkpointing
from services.platform.trino import EventListener
from services.rehearsal import analytics, kube
from services.rehearsal.analytics import PlatformDbt
from services.rehearsal.candidates import (
    EVIDENCE_PATH,
    NOT_REHEARSED,
    SYSTEM_CRITERIA,
    Candidate,
)
from services.rehearsal.cdc import PlatformCdc
from services.rehearsal.dashboards import PlatformSuperset
from services.rehearsal.faults import NOT_INJECTABLE, SINK, FaultInjector, injector
from services.rehearsal.governance import PlatformTrino
from services.rehearsal.kube import PlatformKubes, PushReceiver
from services.rehearsal.lakehouse import Lakehouse, orders
from services.rehearsal.report import CriterionVerdict, RehearsalReport, StepRecord
from services.rehearsal.session import RehearsalSession
from services.rehearsal.stream import FLINK_SINK, RehearsalFlink, StreamJob
from services.stack.config import StackConfig

Say = Callable[[str], None]
#: criteria of the y3-final rubric, graded for every exam
CRITERIA_PER_EXAM = 32


@dataclass(frozen=True, slots=True)
class RehearsalPlan:
    candidates: Sequence[Candidate]
    faults: Sequence[str]
    rows: int = 20_000
    commits: int = 4
    poll_s: float = 2.0
    grade_timeout_s: float = 300.0
    #: deploy through a real API server (first exam of each candidate); None: when built
    kube: bool | None = None
    #: build the candidate's dbt project for real on the first exam of each candidate
    dbt: bool = True
    #: the candidates whose dbt runs (None: every candidate's first exam)
    dbt_for: Sequence[str] | None = None
    #: Debezium on Kafka Connect for the rehearsal's first exam
    cdc: bool = True
    #: rows the load generator changes in the CDC source table
    cdc_rows: int = 200
    #: a Flink session (one MiniCluster) with a job for the first exam of each candidate
    flink: bool = True
    #: the candidates whose first exam runs a Flink job (None: every candidate)
    flink_for: Sequence[str] | None = None
    #: the candidate's own Trino with access control, on the first exam of each candidate
    trino: bool = True
    #: the candidates whose first exam gets its own Trino (None: every candidate)
    trino_for: Sequence[str] | None = None
    #: the candidate's Superset (chart and alert on the dbt model): the first exam with dbt
    superset: bool = True
    #: candidates that sit one exam only (the first fault), beside ``candidates``
    single_exam: Sequence[Candidate] = ()


@dataclass
class Exam:
    """One scripted candidate facing one fault, on a platform of its own."""

    candidate: Candidate
    fault: str
    platform_id: str
    exam_id: str
    lake: Lakehouse
    injector: FaultInjector | None = None
    fault_id: str = ""
    #: the first exam of its candidate: the whole platform (API server, dbt) runs for it
    full: bool = False
    kube: bool = False
    dbt: PlatformDbt | None = None
    cdc: PlatformCdc | None = None
    #: the exam's index in the rehearsal (names its Flink job and topics)
    index: int = 0
    flink: StreamJob | None = None
    trino: PlatformTrino | None = None
    #: the real systems that ran for this exam (flink, trino, superset)
    systems: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        return f"{self.candidate.name}/{self.fault}"

    def ran(self) -> set[str]:
        """Every real system of the candidate's platform that ran for this exam."""
        out = set(self.systems)
        if self.kube:
            out.add("kube")
        if self.dbt is not None:
            out.add("dbt")
        if self.cdc is not None:
            out.add("cdc")
        return out


def _rss_mb() -> tuple[float, float]:
    """Peak RSS of this process and of its largest finished child (the worker, an API
    server), in MB: the kernel keeps a maximum per process, not a sum."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 1024, children / 1024


class Rehearsal:
    """Runs a :class:`RehearsalPlan` in a :class:`RehearsalSession` and reports it."""

    def __init__(
        self,
        session: RehearsalSession,
        catalog: Catalog,
        trino: Any,
        plan: RehearsalPlan,
        say: Say,
    ) -> None:
        self.session = session
        self.catalog = catalog
        self.trino = trino
        self.plan = plan
        self.say = say
        self.report = RehearsalReport(
            session.run_id, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        self.exams: list[Exam] = []
        pairs = [(c, f) for c in plan.candidates for f in plan.faults]
        pairs += [(c, plan.faults[0]) for c in plan.single_exam]
        for c, f in pairs:
            slug = f"{c.name}-{f}".replace("_", "-")
            ns = f"rh_{session.run_id}_{len(self.exams)}"
            self.exams.append(
                Exam(
                    c,
                    f,
                    f"rehearsal-{session.run_id}-{slug}",
                    f"rehearsal-{session.run_id}-{slug}",
                    Lakehouse(catalog, trino, ns),
                    index=len(self.exams),
                )
            )
        for e in self.exams:
            e.injector = injector(e.fault, e.lake, SINK)
        self.kubes: PlatformKubes | None = None
        self.binaries = kube.available() if plan.kube is not False else None
        if plan.kube and self.binaries is None:
            raise StackError(
                "no Kubernetes API server is built: run scripts/build-kube.sh (several "
                "minutes, cached) or rehearse without --kube"
            )
        firsts: dict[str, Exam] = {}
        for e in self.exams:
            firsts.setdefault(e.candidate.name, e)
        for e in firsts.values():
            e.full = True
            e.kube = self.binaries is not None
        self.receiver: PushReceiver | None = None
        self.flink: RehearsalFlink | None = None
        self.superset: PlatformSuperset | None = None
        self._superset_exam: Exam | None = None
        self._superset_future: Future[PlatformSuperset] | None = None
        self._trinos: dict[str, Future[PlatformTrino]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="platform-start")
        self._superset_poller: Poller | None = None

    # ------------------------------------------------------------------ helpers
    def step(
        self,
        exam: Exam,
        part: int,
        actor: str,
        name: str,
        system: str,
        action: Callable[[], str],
    ) -> str:
        started = time.monotonic()
        outcome = action()
        self.report.steps.append(
            StepRecord(exam.label, part, actor, name, system, outcome, time.monotonic() - started)
        )
        self.say(f"{exam.label}: {name}: {outcome}")
        return outcome

    # ------------------------------------------------------------------ the exam
    def run(self) -> RehearsalReport:
        started = time.monotonic()
        self.session.start(
            {e.platform_id: (e.exam_id, f"{e.candidate.name}-{e.fault}") for e in self.exams}
        )
        try:
            self.start_platforms()
            for e in self.exams:
                self.part1(e)
            self.session.flush_collectors()
            for e in self.exams:
                self.part2(e)
            self.wait_alert()
            for e in self.exams:
                self.part3_and_end(e)
            self.session.flush_collectors()
            self.finish()
        finally:
            for e in self.exams:
                if e.dbt is not None:
                    with contextlib.suppress(Exception):
                        e.dbt.stop()
                if e.cdc is not None:
                    e.cdc.stop()
            if self.kubes is not None:
                self.kubes.close()
            if self.receiver is not None:
                self.receiver.close()
            self.session.close()  # the collectors stop before what they poll
            if self.flink is not None:
                with contextlib.suppress(Exception):
                    self.flink.stop()
            self.stop_background()
            if not self.session.settings.keep:
                for e in self.exams:
                    with contextlib.suppress(Exception):
                        e.lake.drop()
        self.report.seconds = time.monotonic() - started
        self.report.peak_rss_mb, self.report.peak_child_rss_mb = _rss_mb()
        return self.report

    def start_platforms(self) -> None:
        full = [e for e in self.exams if e.full]
        if full:
            self.receiver = PushReceiver(self.session.client, [e.platform_id for e in full])
            self.start_in_background(full)
        if full and self.plan.cdc and self.session.settings.registry_v2_url:
            started = time.monotonic()
            first = full[0]
            first.cdc = PlatformCdc(
                self.session.workdir / "cdc",
                self.session.client.bootstrap,
                self.session.settings.registry_v2_url,
                self.session.client.registry_url,
            )
            first.cdc.up()
            self.say(
                f"{first.label}: source PostgreSQL and Kafka Connect up in "
                f"{time.monotonic() - started:.0f}s"
            )
        streaming = [
            e
            for e in full
            if self.plan.flink
            and (self.plan.flink_for is None or e.candidate.name in self.plan.flink_for)
        ]
        if streaming:
            started = time.monotonic()
            self.flink = RehearsalFlink(
                self.session.workdir / "flink",
                self.session.client.bootstrap,
                StackConfig.from_env(),
                self.session.run_id,
                self.session.client.topic_prefix,
            )
            self.flink.up()
            for e in streaming:
                e.systems.add("flink")
            self.say(
                f"Flink session (MiniCluster) up in {time.monotonic() - started:.0f}s for "
                f"{len(streaming)} streaming platforms"
            )
        if not full or self.receiver is None:
            return
        if self.plan.dbt:
            started = time.monotonic()
            dbt_venv = analytics.venv()
            for e in full:
                if self.plan.dbt_for is not None and e.candidate.name not in self.plan.dbt_for:
                    continue
                e.dbt = PlatformDbt.start(
                    dbt_venv,
                    self.session.workdir / f"dbt-{e.platform_id}",
                    self.session.settings.trino_url,
                    self.receiver,
                    e.platform_id,
                    with_test=e.candidate.dbt_test,
                )
                self.session.watch_dbt(e.platform_id, e.dbt.project.target_dir, self.plan.poll_s)
            ready = sum(1 for e in full if e.dbt is not None)
            self.say(
                f"dbt projects ready for {ready} platforms in {time.monotonic() - started:.0f}s"
            )
        if self.binaries is None:
            return
        self.kubes = PlatformKubes(self.binaries, self.receiver, self.session.workdir)
        for e in full:
            started = time.monotonic()
            self.kubes.start(e.platform_id, f"{e.candidate.name}-person")
            self.say(
                f"{e.label}: Kubernetes API server up in {time.monotonic() - started:.0f}s, "
                "auditing to the k8s-audit receiver"
            )

    def start_in_background(self, full: Sequence[Exam]) -> None:
        """The candidates' Trino servers and the Superset start on threads of their own
        while the rest of the platform starts and the exams run: most of a start is a JVM
        or a web server waiting on itself. A step that needs one waits for it there."""
        receiver = self.receiver
        assert receiver is not None
        config = StackConfig.from_env()

        def trino(e: Exam) -> PlatformTrino:
            started = time.monotonic()
            listener = EventListener(
                f"{receiver.url(e.platform_id)}trino",
                receiver.secret(trino_events.NAME, e.platform_id),
            )
            done = PlatformTrino.start(
                self.session.workdir / f"trino-{e.platform_id}", config, listener
            )
            self.say(
                f"{e.label}: the candidate's Trino (file-based access control, event "
                f"listener) up in {time.monotonic() - started:.0f}s"
            )
            return done

        for e in full:
            if self.plan.trino and (
                self.plan.trino_for is None or e.candidate.name in self.plan.trino_for
            ):
                e.systems.add("trino")
                self._trinos[e.platform_id] = self._pool.submit(trino, e)
        modelled = [
            e
            for e in full
            if self.plan.dbt
            and (self.plan.dbt_for is None or e.candidate.name in self.plan.dbt_for)
        ]
        if not (self.plan.superset and modelled):
            return
        first = self._superset_exam = modelled[0]
        first.systems.add("superset")

        def superset() -> PlatformSuperset:
            started = time.monotonic()
            done = PlatformSuperset.start(self.session.workdir / "superset", self.session.run_id)
            self.say(
                f"{first.label}: the candidate's Superset (web server, Celery worker and beat) "
                f"up in {time.monotonic() - started:.0f}s"
            )
            return done

        self._superset_future = self._pool.submit(superset)

    def ready_trino(self, e: Exam) -> PlatformTrino:
        if e.trino is None:
            e.trino = self._trinos[e.platform_id].result()
        return e.trino

    def ready_superset(self) -> PlatformSuperset:
        if self.superset is None:
            assert self._superset_future is not None
            self.superset = self._superset_future.result()
        return self.superset

    def stop_background(self) -> None:
        """Every Trino and Superset started in the background, once its start ended."""
        for e in self.exams:
            future = self._trinos.get(e.platform_id)
            if future is not None:
                with contextlib.suppress(Exception):
                    future.result().stop()
        if self._superset_future is not None:
            with contextlib.suppress(Exception):
                self._superset_future.result().stop()
        self._pool.shutdown(wait=True)

    def part1(self, e: Exam) -> None:
        s = self.session
        c = e.candidate

        def start() -> str:
            s.control(
                "exam.started",
                e.platform_id,
                e.exam_id,
                candidate_id=f"{c.name}-{e.fault}",  # as enrolled in the roster
                rubric_id="y3-final",
                rubric_version="1",
            )
            s.control("part.started", e.platform_id, e.exam_id, part=1)
            return "exam.started and part.started 1, signed"

        self.step(e, 1, "proctor", "start the exam", "proctor (signed events)", start)
        sink = e.lake.qualified(SINK)
        assets = {**ASSETS, "sink_table": sink}
        flink = self.flink if "flink" in e.systems else None
        if flink is not None:
            # the declared sink is the table the Flink job writes (p1.exactly_once reads
            # its commits); the faults keep targeting the exam's batch table
            assets["flink_job"] = flink.job_name(e.index)
            assets["sink_table"] = e.lake.qualified(FLINK_SINK)
        if "trino" in e.systems:
            assets["pii_column"] = f"{e.lake.qualified(SINK)}.email"
        cdc = e.cdc
        if cdc is not None:
            self.step(
                e, 1, "candidate", "register the Debezium connector", "Kafka Connect", cdc.register
            )
            assets["cdc_topic"] = cdc.topic

        def declare() -> str:
            done = s.submit(e.platform_id, e.exam_id, "pipeline.declared", assets=assets)
            named = ", ".join(
                f"{k} {assets[k]}" for k in ("sink_table", "flink_job", "pii_column") if k in assets
            )
            return f"pipeline.declared accepted as {done.event_id} ({named})"

        self.step(e, 1, "candidate", "declare the pipeline", "submission endpoint", declare)
        if flink is not None:
            self.stream_steps(e, flink)
        else:
            s.watch_iceberg(e.platform_id, [sink], self.plan.poll_s)
        if cdc is not None:
            pollers = s.watch_cdc(e.platform_id, s.client.bootstrap, cdc.topic, self.plan.poll_s)
            # the load starts: its first changes make the topic, whose offsets are then
            # read once, so the rest of the load is growth the collector sees
            self.step(
                e,
                1,
                "candidate",
                "start the load generator",
                "PostgreSQL (source)",
                lambda: cdc.load(10),
            )
            s.poll_now(pollers)
            rows = self.plan.cdc_rows
            self.step(
                e,
                1,
                "candidate",
                "change the source table",
                "PostgreSQL (source)",
                lambda: cdc.load(rows),
            )
            s.poll_now(pollers)  # the grown offsets, published before the next step

        def build_sink() -> str:
            e.lake.create(SINK)
            per = max(1, self.plan.rows // self.plan.commits)
            for i in range(self.plan.commits):
                e.lake.append(SINK, orders(i * per, per))
            return f"{sink}: {self.plan.commits} append commits, {e.lake.count(SINK)} rows in Trino"

        self.step(e, 1, "candidate", "load the sink table", "Iceberg catalog + Trino", build_sink)
        if "trino" in e.systems:
            self.governance_steps(e, self.ready_trino(e))
        kubes = self.kubes
        if e.kube and kubes is not None:
            if c.deploy == "manual":
                self.step(
                    e,
                    1,
                    "candidate",
                    "deploy by kubectl apply",
                    "Kubernetes API server",
                    lambda: kubes.apply_by_hand(e.platform_id, sink),
                )
            else:
                self.step(
                    e,
                    1,
                    "candidate",
                    "deploy by GitOps",
                    "Kubernetes API server",
                    lambda: kubes.deploy_gitops(e.platform_id, sink),
                )
        if e.dbt is not None:
            self.dbt_steps(e, e.dbt)
        if c.maintenance:

            def retention() -> str:
                props = e.lake.set_retention(SINK)
                keys = sorted(k for k in props if k.startswith("history.expire"))
                return f"table properties {', '.join(keys)} set"

            self.step(e, 1, "candidate", "snapshot retention", "Iceberg catalog", retention)

            def compact() -> str:
                op = e.lake.compact(SINK)
                return f"Trino optimize committed a {op} snapshot" if op else "nothing to compact"

            self.step(e, 1, "candidate", "compaction", "Trino (optimize)", compact)

    def governance_steps(self, e: Exam, trino: PlatformTrino) -> None:
        """The candidate's access rules on their own Trino, then the reads that verify them."""
        s = self.session
        ns = e.lake.namespace
        pollers = [s.watch_trino_rules(e.platform_id, trino.access_control, self.plan.poll_s)]
        self.step(
            e,
            1,
            "candidate",
            "mask the PII column" if e.candidate.column_mask else "grant the table (no mask)",
            "the candidate's Trino (file access control)",
            lambda: trino.govern(ns, SINK, e.candidate.column_mask),
        )
        self.step(
            e,
            1,
            "candidate",
            "verify the mask as analyst and auditor",
            "the candidate's Trino (event listener)",
            lambda: trino.verify(ns, SINK),
        )
        s.poll_now(pollers)

    def stream_steps(self, e: Exam, flink: RehearsalFlink) -> None:
        """The candidate's Flink job submitted, watched by the Flink and Iceberg collectors,
        run until it checkpointed and committed; compacted by Trino when they maintain."""
        s = self.session
        c = e.candidate
        mode: Checkpointing = (
            "at_least_once" if c.checkpointing == "at_least_once" else "exactly_once"
        )

        def submit() -> str:
            job = flink.start_job(
                e.platform_id, e.index, e.lake.namespace, mode, retention=c.maintenance
            )
            e.flink = job
            retention = "; history.expire.* set on the table" if c.maintenance else ""
            return (
                f"job {job.job.name} RUNNING as {job.job_id}, {mode} checkpoints every "
                f"{job.job.checkpoint_interval_ms} ms, writing {job.sink}{retention}"
            )

        self.step(e, 1, "candidate", "submit the Flink job", "Flink (MiniCluster)", submit)
        assert flink.session is not None and e.flink is not None
        s.watch_iceberg(e.platform_id, [e.lake.qualified(SINK), e.flink.sink], self.plan.poll_s)
        pollers = [
            s.watch_flink(e.platform_id, flink.session.url, e.flink.job.name, self.plan.poll_s)
        ]
        self.step(
            e,
            1,
            "candidate",
            "run until checkpointed",
            "Flink (MiniCluster) + Iceberg catalog",
            lambda: flink.wait_checkpoints(e.platform_id, e.lake.count),
        )
        if c.maintenance:

            def compact() -> str:
                op = e.lake.compact(FLINK_SINK)
                return (
                    f"Trino optimize on {e.lake.qualified(FLINK_SINK)} committed a {op} snapshot"
                    if op
                    else "nothing to compact"
                )

            self.step(e, 1, "candidate", "compact the Flink sink", "Trino (optimize)", compact)
        s.poll_now(pollers)

    def dbt_steps(self, e: Exam, dbt: PlatformDbt) -> None:
        """The rollup built and tested, a row broken upstream, the tests run again."""
        self.step(e, 1, "candidate", "dbt build (dbt-ol)", "dbt-trino on Trino", dbt.build)

        def break_row() -> str:
            key = dbt.break_row()
            self.session.control(
                "row.broken", e.platform_id, e.exam_id, dataset=dbt.source_dataset, row_key=key
            )
            return (
                f"inserted {key} (a negative amount) into {dbt.source_dataset}; row.broken signed"
            )

        if self._superset_exam is e:
            superset = self.ready_superset()
            schema = dbt.project.target.schema

            def chart() -> str:
                return superset.build(StackConfig.from_env(), schema, MODEL)

            self.step(e, 1, "candidate", "chart and alert on the model", "Superset", chart)
            self._superset_poller = self.session.watch_superset(
                e.platform_id,
                superset.url,
                superset.superset.user,
                superset.password_env,
                self.plan.poll_s,
            )
        self.step(e, 1, "proctor", "break a row upstream", "Trino", break_row)
        self.step(
            e, 1, "candidate", "dbt build after the broken row", "dbt-trino on Trino", dbt.build
        )

    def part2(self, e: Exam) -> None:
        s = self.session
        inj = e.injector
        assert inj is not None
        e.fault_id = f"{e.exam_id}-fault"

        def announce() -> str:
            injected = inj.inject()
            s.control(
                "fault.injected",
                e.platform_id,
                e.exam_id,
                fault_id=e.fault_id,
                layer=injected.layer,
                kind=injected.kind,
                target=injected.target,
                note=injected.note,
            )
            return injected.note

        self.step(e, 2, "injector", f"inject {inj.layer}/{inj.kind}", inj.system, announce)
        diag = e.candidate.diagnosis
        layer, kind = inj.layer, inj.kind
        if diag == "symptom":
            layer, kind = "superset", "dashboard_wrong"
        elif diag == "layer_only":
            kind = next(k for k in _KINDS[inj.layer] if k != inj.kind)

        def diagnose() -> str:
            s.submit(
                e.platform_id,
                e.exam_id,
                "diagnosis.submitted",
                fault_id=e.fault_id,
                layer=layer,
                kind=kind,
                summary=f"the orders dashboard is wrong because of {layer}/{kind}",
            )
            return f"diagnosed {layer}/{kind}"

        self.step(e, 2, "candidate", "diagnose", "submission endpoint", diagnose)
        if diag == "right":

            def fix() -> str:
                done = inj.fix()
                return f"{done}; fault still visible: {inj.broken()}"

            self.step(e, 2, "candidate", "fix", inj.system, fix)
        if e.candidate.postmortem:

            def postmortem() -> str:
                s.submit(
                    e.platform_id,
                    e.exam_id,
                    "artifact.submitted",
                    part=2,
                    kind="postmortem",
                    content=postmortem_text(inj.layer),
                    uri="docs/postmortem.md",
                )
                return "postmortem submitted"

            self.step(e, 2, "candidate", "postmortem", "submission endpoint", postmortem)

        def undo() -> str:
            inj.undo()
            return f"platform restored; fault visible: {inj.broken()}"

        self.step(e, 2, "injector", "undo the fault", inj.system, undo)

    def wait_alert(self) -> None:
        """The Superset alert evaluated by its beat before the exam ends (a tick is at most
        a minute away; Parts 1 and 2 of the other exams ran meanwhile)."""
        superset, e = self.superset, self._superset_exam
        if superset is None or e is None or superset.alert is None:
            return
        self.step(
            e, 1, "candidate", "alert evaluated", "Superset (Celery beat)", superset.wait_evaluated
        )
        if self._superset_poller is not None:
            self.session.poll_now([self._superset_poller])

    def part3_and_end(self, e: Exam) -> None:
        s = self.session

        def review() -> str:
            s.control("part.started", e.platform_id, e.exam_id, part=3)
            s.submit(
                e.platform_id,
                e.exam_id,
                "artifact.submitted",
                part=3,
                kind="design_review",
                content=STRONG_REVIEW,
                uri="docs/review.md",
            )
            s.submit(e.platform_id, e.exam_id, "self_grade.submitted", score_pct=40.0)
            return "design review and self-grade submitted"

        self.step(e, 3, "candidate", "design review", "submission endpoint", review)

        def end() -> str:
            s.control("exam.ended", e.platform_id, e.exam_id)
            return "exam.ended, signed"

        self.step(e, 3, "proctor", "end the exam", "proctor (signed events)", end)

    def finish(self) -> None:
        self.say("every exam ended; waiting for the worker's final grades in Trino")
        scores = self.session.wait_final(
            self.trino,
            {e.exam_id: CRITERIA_PER_EXAM for e in self.exams},
            self.plan.grade_timeout_s,
        )
        seen, dead = self.session.signals()
        self.report.signals = {p: dict(c) for p, c in seen.items()}
        self.report.dead_letters = dead
        for e in self.exams:
            expected = e.candidate.expectations(full=e.full, systems=e.ran())
            rows = scores.get(e.exam_id, {})
            for cid in sorted({*rows, *expected}):
                row = rows.get(cid)
                self.report.criteria.append(
                    CriterionVerdict(
                        e.label,
                        cid,
                        expected.get(cid),
                        row.state if row else "missing",
                        row.reason if row else "no row in Trino's exam_scores",
                        row.evidence if row else "",
                        EVIDENCE_PATH.get(cid, "-"),
                    )
                )
        self.report.not_rehearsed = dict(NOT_REHEARSED)
        ran = {name for e in self.exams for name in e.systems}
        for system, (needs, cids) in SYSTEM_CRITERIA.items():
            if system not in ran:
                for cid in cids:
                    self.report.not_rehearsed[cid] = needs
        self.report.not_injectable = dict(NOT_INJECTABLE)


_KINDS = {
    "iceberg": ("stale_snapshot", "unmerged_branch", "compaction_race"),
    "trino": ("dynamic_filtering_off", "wrong_join_order", "stale_statistics"),
}
