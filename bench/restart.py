"""What a restart and a rebalance cost the grader worker, on the local stack.

    .venv/bin/python bench/restart.py [--copies 3] [--dynamic]

With a topic prefix, group and namespace of its own, one ``proctor worker`` (real engine)
grades a recorded exam (``--copies`` renamed copies), then:

* *kill -9 and restart*: the worker is killed and started again at once with the same
  worker id; measured from the new process's start to its /readyz answering ready (every
  assigned partition restored) and to its first graded record of those published after
  the kill. ``--dynamic`` runs the same without static membership and with Faust's 60 s
  session, the behaviour before (the restart waits out the dead member's session);
* *a member joins*: a second worker starts; measured is how long the first stops grading
  (its /readyz not ready: rebalancing, then restoring) and the time to both ready;
* *a member stops cleanly* (SIGTERM): how long until the first owns every partition again
  and is ready (a static member leaves the group on a clean stop; it does not wait out
  its session).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from services.contract.schemas import PLATFORM_PARTITIONS
from services.stack.catalog import TRINO_CATALOG, load_catalog, trino_connect
from services.stack.config import StackConfig
from tests.integration.grader.live import SCENARIOS, LiveExam, wait_for

SCENARIO = "p2_cdc_dropped_events.jsonl"
NAMES = ("alice", "bob", "carol")


def recording(tmp: Path, copies: int, tag: str) -> Path:
    lines = (SCENARIOS / SCENARIO).read_text().splitlines()
    out = []
    for k in range(copies):
        for line in lines:
            for name in NAMES:
                line = line.replace(name, f"{name}{tag}{k:02d}")
            out.append(line)
    path = tmp / f"{tag}.jsonl"
    path.write_text("\n".join(out) + "\n")
    return path


def ready(port: int) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None
    return body


def graded(live: LiveExam, port: int) -> float:
    try:
        return live.metric("proctor_grader_records_total", port=port, outcome="graded")
    except httpx.HTTPError:
        return 0.0


#: log lines of the restarted worker that mark the steps of its return
STEPS = ("Joined group", "Elected group leader", "Revoking", "restored", "first record")


def timeline(log: Path, t0: float) -> str:
    """Seconds from the restart to each step in the restarted worker's log."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if any(step in entry.get("message", "") for step in STEPS):
            ts = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()
            out.append(f"  +{ts - t0:5.1f} s  {entry['message'][:110]}")
    return "restarted worker:\n" + "\n".join(out[:30])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--dynamic", action="store_true", help="no static membership, 60 s")
    args = parser.parse_args()
    config = StackConfig.from_env()
    # the worker grades only signed and MACed input (docs/trust.md): the local stack's keys
    from services.trust.local import ensure_local_trust

    for name, value in ensure_local_trust(config.state_dir / "keys").items():
        os.environ.setdefault(name, value)
    namespace = f"bench_restart_{uuid.uuid4().hex[:8]}"
    extra = (
        {"PROCTOR_STATIC_MEMBERSHIP": "false", "PROCTOR_SESSION_TIMEOUT_S": "60"}
        if args.dynamic
        else {}
    )
    catalog = load_catalog(config)
    catalog.create_namespace(namespace)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        live = LiveExam(config.kafka_bootstrap, config.registry_url, namespace, tmp, config)
        start_wall = time.time()
        try:
            live.publish(live.events(str(recording(tmp, args.copies, "a"))))
            first = live.start_worker(**extra)
            live.wait_ready(300)
            wait_for(lambda: graded(live, live.port) > 0, 300, "grading", live.procs)

            first.send_signal(signal.SIGKILL)
            first.wait(10)
            live.publish(live.events(str(recording(tmp, args.copies, "b"))))
            start, start_wall = time.monotonic(), time.time()
            again = live.start_worker(**extra)
            wait_for(lambda: bool((ready(live.port) or {}).get("ready")), 300, "ready", [again])
            to_ready = time.monotonic() - start
            wait_for(lambda: graded(live, live.port) > 0, 300, "grading again", [again])
            to_graded = time.monotonic() - start
            print(
                f"kill -9, restart: ready after {to_ready:.1f} s, grading after {to_graded:.1f} s"
            )

            wait_for(lambda: bool((ready(live.port) or {}).get("ready")), 60, "ready", [again])
            env_b = live.second_worker_env("b")
            port_b = int(env_b["PROCTOR_HTTP_PORT"])
            start = time.monotonic()
            second = live.start_worker(**env_b, **extra)
            paused_at: float | None = None
            while True:
                body_a, body_b = ready(live.port) or {}, ready(port_b) or {}
                now = time.monotonic()
                if paused_at is None and not body_a.get("ready"):
                    paused_at = now
                both = body_a.get("ready") and body_b.get("ready") and body_b.get("partitions")
                if both and paused_at is not None:
                    break
                if now - start > 300:
                    raise SystemExit("the join did not settle in 300 s")
                time.sleep(0.1)
            settled = time.monotonic()
            print(
                f"a member joins: the first paused {settled - paused_at:.1f} s; both ready "
                f"{settled - start:.1f} s after the second started (its start-up included)"
            )

            start = time.monotonic()
            second.send_signal(signal.SIGTERM)
            second.wait(60)

            def owns_all() -> bool:
                body = ready(live.port) or {}
                return bool(body.get("ready")) and len(body["partitions"]) == PLATFORM_PARTITIONS

            wait_for(owns_all, 300, "the first to own every partition", [again])
            print(
                f"a member stops (SIGTERM): all partitions ready {time.monotonic() - start:.1f} s"
            )
        finally:
            live.close()
            if (tmp / "worker-1.log").exists():
                print(timeline(tmp / "worker-1.log", start_wall))
            else:
                print(live.log_tails(30))
            conn = trino_connect(config)
            cur = conn.cursor()
            cur.execute(f"DROP VIEW IF EXISTS {TRINO_CATALOG}.{namespace}.exam_scores")
            cur.fetchall()
            conn.close()
            for identifier in catalog.list_tables(namespace):
                catalog.purge_table(identifier)
            catalog.drop_namespace(namespace)


if __name__ == "__main__":
    main()
