"""What a rehearsal runs beside the candidate's systems: its own topics and grading tables,
the grader worker, the proctor's signed publisher, the submission endpoint and the
collectors that watch each candidate's platform.

A session owns a topic prefix, a worker group and an Iceberg namespace of its own, so a
rehearsal never mixes with a live cohort or another rehearsal on the same stack, and
everything it made is removed by :meth:`RehearsalSession.close` (unless kept).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from services.collectors import dbt as dbt_collector
from services.collectors import flink as flink_collector
from services.collectors import iceberg as iceberg_collector
from services.collectors import offsets as offsets_collector
from services.collectors import registry as registry_collector
from services.collectors import superset as superset_collector
from services.collectors import trino_rules as trino_rules_collector
from services.collectors.polling import Collector, Poller, PositionStore
from services.collectors.webhook_guard import StaticRoster
from services.contract.dlq import DeadLetter
from services.contract.registry import Registry
from services.contract.schemas import TOPICS_BY_NAME, load_contract, topic_name
from services.contract.settings import ClientSettings
from services.contract.topics import admin_client, delete_topics, ensure_topics
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.errors import ConfigError, StackError
from services.publisher.publisher import Publisher, new_event
from services.stack.demo import Worker
from services.submission.client import Submitted, submit
from services.submission.server import BackgroundSubmissionServer, SubmissionServer
from services.trust.credentials import master_from_env, submission_token
from services.trust.keys import (
    SIGNING_KEY_ENV,
    Keyring,
    SigningKey,
    load_private_key,
    signing_key_from_env,
)
from services.trust.local import ensure_local_trust
from services.trust.roster import RosterEntry, publish_entries

Say = Callable[[str], None]

#: the platform topics whose signals the report counts
SIGNAL_TOPICS = tuple(
    name for name in TOPICS_BY_NAME if name.startswith("platform.") or name == "grading.dlq"
)

SCORES_SQL = """SELECT exam_id, platform_id, criterion_id, state, score, max_score, reason,
       evidence, total_pct, passed
FROM iceberg.{namespace}.exam_scores"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def submission_key() -> SigningKey:
    """The submission endpoint's key: the keyring's submission key whose private key lies
    beside the proctor's (as ``proctor keys generate`` and the local stack write them)."""
    ring = Keyring.from_env()
    directory = Path(os.environ[SIGNING_KEY_ENV]).parent
    for trusted in ring:
        if trusted.role == "submission" and (directory / f"{trusted.key_id}.pem").exists():
            return load_private_key(directory / f"{trusted.key_id}.pem", trusted.key_id)
    raise ConfigError(
        f"no submission key beside {directory}: the rehearsal's endpoint signs candidates' "
        "submissions with it (`proctor keys generate --role submission`)"
    )


@dataclass(frozen=True, slots=True)
class CriterionRow:
    """One criterion of one exam as the worker wrote it and Trino reads it."""

    exam_id: str
    platform_id: str
    criterion_id: str
    state: str
    score: float
    max_score: float
    reason: str
    evidence: str


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Where the session's grading lands and how the worker is tuned for a short run."""

    catalog_uri: str
    warehouse: str
    trino_url: str
    state_dir: Path
    #: the registry's native v2 API (Debezium's Apicurio converter speaks it)
    registry_v2_url: str = ""
    http_port: int = 0
    keep: bool = False


class RehearsalSession:
    """The proctor's side of one rehearsal on the local stack."""

    def __init__(self, client: ClientSettings, settings: SessionSettings, say: Say) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.say = say
        self.settings = settings
        self.client = dataclasses.replace(client, topic_prefix=f"rehearsal-{self.run_id}.")
        self.namespace = f"rehearsal_{self.run_id}"
        self.workdir = settings.state_dir / "rehearsals" / self.run_id
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name, value in ensure_local_trust(settings.state_dir / "keys").items():
            os.environ.setdefault(name, value)
        master = master_from_env()
        assert master is not None  # required=True raises a ConfigError first
        self.master: bytes = master
        self.contract = load_contract()
        registry = registry_client(
            self.client.registry_url, basic_auth_user_info=self.client.registry_user_info
        )
        self.codec = WireCodec(registry, self.contract, topic_prefix=self.client.topic_prefix)
        self._registry = registry
        self.publisher: Publisher | None = None
        self.worker: Worker | None = None
        self._submissions: BackgroundSubmissionServer | None = None
        self.submission_url = ""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pollers: list[Poller] = []
        #: one lock per poller: its thread and :meth:`poll_now` never step it at once
        self._locks: dict[int, threading.Lock] = {}
        self.platforms: list[str] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self, roster: Mapping[str, tuple[str, str]]) -> None:
        """Topics and schemas under the session's prefix, the roster (platform -> exam,
        candidate) signed before any collector speaks for a platform, the worker and the
        submission endpoint."""
        self.platforms = list(roster)
        extra = {k: str(v) for k, v in self.client.kafka_security.items()}
        self.admin = admin_client(self.client.bootstrap, extra)
        ensure_topics(self.admin, prefix=self.client.topic_prefix)
        Registry(
            self._registry, self.client.registry_url, self.contract, self.client.topic_prefix
        ).register_all()
        self.say(f"topics and schemas under prefix {self.client.topic_prefix!r}")
        signer = signing_key_from_env()
        assert signer is not None  # ensure_local_trust set it
        now = int(time.time() * 1000)
        publish_entries(
            self.client,
            [RosterEntry(p, exam, cand, issued_ms=now) for p, (exam, cand) in roster.items()],
            signer,
        )
        self.say(f"{len(roster)} platforms enrolled in the session's roster")
        port = self.settings.http_port or free_port()
        self.worker = Worker(
            self.workdir / "worker.log",
            port,
            extra_env={
                "PROCTOR_KAFKA_BOOTSTRAP": self.client.bootstrap,
                "PROCTOR_SCHEMA_REGISTRY_URL": self.client.registry_url,
                "PROCTOR_TOPIC_PREFIX": self.client.topic_prefix,
                "PROCTOR_APP_ID": f"rehearsal-{self.run_id}",
                "PROCTOR_DATA_DIR": str(self.workdir / "worker-state"),
                "PROCTOR_TABLE": f"{self.namespace}.criterion_transitions",
                "PROCTOR_CATALOG_URI": self.settings.catalog_uri,
                "PROCTOR_WAREHOUSE": self.settings.warehouse,
                "PROCTOR_TRINO_URL": self.settings.trino_url,
                "PROCTOR_COMMIT_ROWS": "50",
                "PROCTOR_COMMIT_INTERVAL_S": "0.5",
                "PROCTOR_MAINTENANCE_INTERVAL_S": "3600",
            },
        )
        self.worker.start()
        self.publisher = Publisher(self.client, codec=self.codec, say=self.say)
        key = submission_key()
        server = SubmissionServer.build(
            self.client, self.master, key, StaticRoster.of(self.platforms, 1)
        )
        self._submissions = BackgroundSubmissionServer(server)
        self.submission_url = f"http://127.0.0.1:{self._submissions.__enter__()}"
        self.worker.wait_ready()
        self.say(f"grader worker ready ({self.worker.url}), submissions at {self.submission_url}")

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        for poller in self._pollers:
            with contextlib.suppress(Exception):
                poller.close()
        if self._submissions is not None:
            self._submissions.__exit__(None, None, None)
        if self.publisher is not None:
            self.publisher.close()
        if self.worker is not None:
            self.worker.stop()
        if not self.settings.keep and hasattr(self, "admin"):
            names = [
                n
                for n in self.admin.list_topics(timeout=10).topics
                if n.startswith((self.client.topic_prefix, f"rehearsal-{self.run_id}"))
            ]
            with contextlib.suppress(Exception):
                delete_topics(self.admin, names)

    # ------------------------------------------------------------------ the proctor
    def control(self, event_type: str, platform_id: str, exam_id: str, **fields: Any) -> Event:
        """A proctor event, signed with the proctor's key, stamped now."""
        assert self.publisher is not None, "start the session first"
        event = new_event(event_type, platform_id, {"exam_id": exam_id, **fields})
        self.publisher.publish(event)
        return event

    # ------------------------------------------------------------------ the candidate
    def submit(self, platform_id: str, exam_id: str, event_type: str, **fields: Any) -> Submitted:
        """A candidate's submission through the real endpoint, with their own token."""
        token = submission_token(self.master, platform_id, exam_id, 1)
        return submit(self.submission_url, token, event_type, {"exam_id": exam_id, **fields})

    # ------------------------------------------------------------------ the collectors
    def watch_iceberg(self, platform_id: str, tables: Iterable[str], interval_s: float) -> None:
        """The real Iceberg collector on the catalog, for the platform's tables."""
        settings = iceberg_collector.Settings(
            catalog_name="proctor",
            properties={
                "type": "sql",
                "uri": self.settings.catalog_uri,
                "warehouse": self.settings.warehouse,
            },
            tables=tuple(tables),
        )
        self.watch(iceberg_collector.build(settings, platform_id), interval_s)

    def watch_dbt(self, platform_id: str, target_dir: Path, interval_s: float) -> None:
        """The real dbt collector on the platform's dbt target directory."""
        settings = dbt_collector.Settings(path=target_dir)
        self.watch(dbt_collector.build(settings, platform_id), interval_s)

    def watch_flink(self, platform_id: str, url: str, job_name: str, interval_s: float) -> Poller:
        """The real Flink collector on the session's REST API, for the platform's job."""
        settings = flink_collector.Settings(url=url, job_name_pattern=job_name)
        return self.watch(flink_collector.build(settings, platform_id), interval_s)

    def watch_trino_rules(
        self, platform_id: str, access_control: Path, interval_s: float
    ) -> Poller:
        """The real Trino rules collector, reading the rules where the candidate's Trino
        does (its access-control.properties)."""
        settings = trino_rules_collector.Settings(access_control=access_control)
        return self.watch(trino_rules_collector.build(settings, platform_id), interval_s)

    def watch_superset(
        self, platform_id: str, url: str, username: str, password_env: str, interval_s: float
    ) -> Poller:
        """The real Superset collector on the candidate's Superset REST API."""
        settings = superset_collector.Settings(
            url=url, username=username, password_env=password_env
        )
        return self.watch(superset_collector.build(settings, platform_id), interval_s)

    def watch_cdc(
        self, platform_id: str, bootstrap: str, topic: str, interval_s: float
    ) -> list[Poller]:
        """The real offsets and registry collectors on the CDC topic and its subject."""
        offsets = self.watch(
            offsets_collector.build(
                offsets_collector.Settings(bootstrap=bootstrap, topics=(topic,)), platform_id
            ),
            interval_s,
        )
        registry = self.watch(
            registry_collector.build(
                registry_collector.Settings(
                    url=self.client.registry_url, subject_pattern=re.escape(f"{topic}-value")
                ),
                platform_id,
            ),
            interval_s,
        )
        return [offsets, registry]

    def watch(self, collector: Collector, interval_s: float) -> Poller:
        """Poll ``collector`` in a thread of its own until the session closes."""
        platform_id = collector.platform_id
        poller = Poller(
            collector,
            Publisher(self.client, codec=self.codec),
            PositionStore(self.workdir / "collectors", collector.store_key, platform_id),
            interval_s=interval_s,
            heartbeat_s=min(30.0, interval_s * 4),
        )
        self._pollers.append(poller)
        lock = self._locks[id(poller)] = threading.Lock()
        thread = threading.Thread(
            target=self._run,
            args=(poller, lock),
            name=f"{collector.name}-{platform_id}",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)
        return poller

    def _run(self, poller: Poller, lock: threading.Lock) -> None:
        """The poller's loop (poll, back off on errors, heartbeat), under its lock."""
        next_beat = 0.0
        while not self._stop.is_set():
            with lock:
                delay = poller.attempt()
                if time.monotonic() >= next_beat:
                    poller.heartbeat()
                    next_beat = time.monotonic() + poller.heartbeat_s
            self._stop.wait(delay)

    def poll_now(self, pollers: Iterable[Poller] | None = None) -> None:
        """One more poll and a heartbeat of the collectors now (all by default), so what
        just happened is published before the next step; never at once with their thread."""
        for poller in self._pollers if pollers is None else pollers:
            with self._locks[id(poller)]:
                poller.attempt()
                poller.heartbeat()

    def flush_collectors(self) -> None:
        self.poll_now()

    # ------------------------------------------------------------------ reading back
    def signals(self) -> tuple[dict[str, Counter[str]], list[str]]:
        """Signals on the session's platform topics, counted per platform and type, and
        every dead letter's platform, class and reason."""
        consumer = Consumer(
            self.client.kafka_config(
                **{
                    "group.id": f"rehearsal-report-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                }
            )
        )
        seen: dict[str, Counter[str]] = {}
        dead: list[str] = []
        try:
            for logical in SIGNAL_TOPICS:
                name = topic_name(logical, self.client.topic_prefix)
                meta = consumer.list_topics(name, timeout=10).topics.get(name)
                if meta is None:
                    continue
                for p in meta.partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                    if high <= low:
                        continue
                    consumer.assign([TopicPartition(name, p, low)])
                    offset = low
                    while offset < high:
                        msg = consumer.poll(5.0)
                        if msg is None:
                            break
                        if msg.error():
                            continue
                        at = msg.offset() or 0
                        offset = at + 1
                        try:
                            ev = self.codec.decode(msg.value(), name, p, at)
                        except Exception:  # a dead letter's payload is counted by the worker
                            continue
                        seen.setdefault(ev.platform_id, Counter())[ev.type] += 1
                        if ev.type == "grading.dead_letter":
                            letter = DeadLetter.from_event(ev)
                            dead.append(
                                f"{letter.platform_id}: {letter.error_class}: {letter.reason}"
                            )
        finally:
            consumer.close()
        return seen, dead

    def scores(self, trino: Any) -> dict[str, dict[str, CriterionRow]]:
        """Every exam's criteria as Trino reads them; empty before the worker wrote any."""
        cur = trino.cursor()
        try:
            cur.execute(SCORES_SQL.format(namespace=self.namespace))
            rows = cur.fetchall()
        except Exception as exc:
            if "does not exist" in str(exc):
                return {}
            raise
        out: dict[str, dict[str, CriterionRow]] = {}
        for exam_id, pid, cid, state, score, max_score, reason, evidence, _pct, _p in rows:
            out.setdefault(exam_id, {})[cid] = CriterionRow(
                exam_id,
                pid,
                cid,
                state,
                float(score),
                float(max_score),
                reason or "",
                str(evidence or ""),
            )
        return out

    def wait_final(
        self,
        trino: Any,
        exams: Mapping[str, int],
        timeout_s: float,
        say_every_s: float = 15.0,
    ) -> dict[str, dict[str, CriterionRow]]:
        """Until every exam has all its criteria (``exams``: exam id -> criteria count) and
        none is pending, or ``timeout_s`` passes (the caller reports what is missing)."""
        deadline = time.monotonic() + timeout_s
        next_say = time.monotonic() + say_every_s
        latest: dict[str, dict[str, CriterionRow]] = {}
        while time.monotonic() < deadline:
            assert self.worker is not None
            if self.worker.proc is not None and self.worker.proc.poll() is not None:
                raise StackError(
                    f"the grader worker exited ({self.worker.proc.returncode}):\n"
                    f"{self.worker.tail()}"
                )
            with contextlib.suppress(Exception):
                latest = self.scores(trino)
            done = all(
                len(latest.get(e, {})) >= n
                and all(r.state != "pending" for r in latest[e].values())
                for e, n in exams.items()
            )
            if done:
                return latest
            if time.monotonic() >= next_say:
                got = sum(len(v) for v in latest.values())
                self.say(f"waiting for final grades in Trino ({got} criterion rows so far)")
                next_say = time.monotonic() + say_every_s
            time.sleep(1.0)
        return latest
