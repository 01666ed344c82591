"""Benchmark of the worker's admission check (services/trust/admission.py).

    .venv/bin/python bench/trust.py [--records 20000] [--runs 5]

Prints, each as the median of ``--runs`` runs, the CPU µs per record of
``TrustAdmission.admit`` for a MACed platform signal and for a signed control event, and
each as a share of the ~150 µs the worker spends per record today (README: the worker's
throughput). Records are encoded once beforehand, as the worker gets them off the wire.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.contract.admission import RecordFacts
from services.contract.schemas import load_contract
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.trust.admission import TrustAdmission
from services.trust.credentials import SignalKey
from services.trust.keys import Keyring, generate
from services.trust.roster import RosterEntry
from services.trust.signing import sign_event

WORKER_US_PER_RECORD = 150.0
MASTER = b"bench-master-secret-0123456789abcdef"
T0 = 1_795_000_000_000


def records(n: int, kind: str, codec: WireCodec, key: object) -> list[tuple[Event, RecordFacts]]:
    out = []
    for i in range(n):
        pid = f"basecamp-{i % 200:03d}"
        if kind == "signal":
            ev = Event(
                "tool.used",
                pid,
                f"{pid}-e{i}",
                T0 + i,
                {"tool": "grafana", "action": "explore", "target": "Orders SLO", "user": "a"},
            )
        else:
            ev = Event(
                "fault.injected",
                pid,
                f"{pid}-f{i}",
                T0 + i,
                {
                    "exam_id": f"exam-{pid}",
                    "fault_id": "fault-1",
                    "layer": "trino",
                    "kind": "stale_statistics",
                    "target": "lake.orders_enriched",
                },
            )
        ev = codec.contract.validate(ev)
        topic = codec.topic_for(ev.type)
        value = codec.encode(ev)
        k = pid.encode()
        if kind == "signal":
            headers = SignalKey.derive(MASTER, pid, 1).headers(topic, k, value)
        else:
            headers = sign_event(ev, key)  # type: ignore[arg-type]
        out.append((ev, RecordFacts(topic, 0, i, k, value, headers, ev.ts_ms)))
    return out


def run(admission: TrustAdmission, batch: list[tuple[Event, RecordFacts]]) -> float:
    admission._seen.clear()  # the duplicate check's memory, as on a fresh worker
    start = time.process_time()
    for ev, facts in batch:
        if admission.admit(ev, facts) is not None:
            raise SystemExit(f"refused: {admission.admit(ev, facts)}")
    return (time.process_time() - start) / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    codec = WireCodec(
        registry_client(f"mock://{uuid.uuid4().hex}"), load_contract(), auto_register=True
    )
    proctor = generate("proctor", "proctor-bench")
    roster = {
        f"basecamp-{i:03d}": RosterEntry(f"basecamp-{i:03d}", f"exam-basecamp-{i:03d}", "c")
        for i in range(200)
    }
    admission = TrustAdmission(Keyring.of(proctor), roster, MASTER)
    for kind in ("signal", "control"):
        n = args.records if kind == "signal" else max(1, args.records // 4)
        batch = records(n, kind, codec, proctor)
        costs = [run(admission, batch) for _ in range(args.runs)]
        median = statistics.median(costs)
        print(
            f"admit() {kind:<7}: {median:7.2f} µs/record (median of {args.runs} runs of {n:,}; "
            f"runs {', '.join(f'{c:.2f}' for c in costs)}) = "
            f"{median / WORKER_US_PER_RECORD:.1%} of the worker's ~{WORKER_US_PER_RECORD:.0f} µs/record"
        )


if __name__ == "__main__":
    main()
