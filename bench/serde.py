"""Benchmark: encode/decode throughput of the contract's wire format vs plain fastavro.

The wire codec validates each event against its schema, converts the JSON form of its
fields (timestamps, bytes) to the Avro datum, writes the 5-byte header with a cached
schema id, and on decode checks the header, the topic and the contract rules and builds
an Event. The baseline is what those steps wrap: ``fastavro.schemaless_writer`` and
``schemaless_reader`` on the same records with the same parsed schemas, in the same run.

    .venv/bin/python bench/serde.py [--events 20000] [--runs 5] [--registry-url URL]

Prints events/s (median of the runs) for each and the ratio wire / plain.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import fastavro

from services.contract.jsonl import read_jsonl
from services.contract.schemas import load_contract
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event

EXAMPLES = Path(__file__).resolve().parents[1] / "schemas" / "examples.jsonl"


def _median_rate(fn: Callable[[], int], runs: int) -> float:
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def bench(events: list[Event], codec: WireCodec, runs: int) -> dict[str, float]:
    contract = codec.contract
    schemas = [contract.schema(e.type) for e in events]
    topics = [codec.topic_for(e.type) for e in events]
    datums = [contract.to_datum(e) for e in events]
    parsed = [s.parsed for s in schemas]
    for e in events:  # warm the schema id caches (one registry call per type)
        codec.decode(codec.encode(e), codec.topic_for(e.type), 0, 0)
    wire_values = [codec.encode(e) for e in events]
    plain_values = [v[5:] for v in wire_values]

    def wire_encode() -> int:
        for e in events:
            codec.encode(e)
        return len(events)

    def plain_encode() -> int:
        for schema, datum in zip(parsed, datums, strict=True):
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, schema, datum)
            buf.getvalue()
        return len(events)

    def wire_decode() -> int:
        for value, topic in zip(wire_values, topics, strict=True):
            codec.decode(value, topic, 0, 0)
        return len(events)

    def plain_decode() -> int:
        for schema, value in zip(parsed, plain_values, strict=True):
            fastavro.schemaless_reader(io.BytesIO(value), schema, None)
        return len(events)

    return {
        "encode wire": _median_rate(wire_encode, runs),
        "encode plain": _median_rate(plain_encode, runs),
        "decode wire": _median_rate(wire_decode, runs),
        "decode plain": _median_rate(plain_decode, runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--registry-url",
        default="mock://bench",
        help="registry to resolve schema ids (ids are cached, so it is asked once per type)",
    )
    args = parser.parse_args()
    contract = load_contract()
    examples = [
        e for e in read_jsonl(EXAMPLES, contract) if e.type != "grading.criterion_transition"
    ]
    codec = WireCodec(registry_client(args.registry_url), contract, auto_register=True)
    mixes = {
        f"all {len(examples)} types": examples,
        "exam.started (small)": [e for e in examples if e.type == "exam.started"],
        "dbt.run (nested)": [e for e in examples if e.type == "dbt.run"],
    }
    print(f"serde benchmark: {args.events} events per run, median of {args.runs} runs")
    print(f"{'mix':<22} {'op':<7} {'wire ev/s':>12} {'plain ev/s':>12} {'wire/plain':>11}")
    for label, sample in mixes.items():
        events = [sample[i % len(sample)] for i in range(args.events)]
        rates = bench(events, codec, args.runs)
        for op in ("encode", "decode"):
            wire, plain = rates[f"{op} wire"], rates[f"{op} plain"]
            print(f"{label:<22} {op:<7} {wire:>12,.0f} {plain:>12,.0f} {wire / plain:>10.2f}x")


if __name__ == "__main__":
    main()
