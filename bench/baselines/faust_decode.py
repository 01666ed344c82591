"""A Faust agent that only decodes: the ceiling of a Faust worker on this machine.

    .venv/bin/python bench/baselines/faust_decode.py APP_ID TOTAL TOPIC...

A baseline of ``bench/service.py`` (run by it as a child on the worker's core), built
like the worker's app and agent: the same broker settings from the environment
(``PROCTOR_*``), raw key and value serializers, the input topics declared with acks off,
batches of ``PROCTOR_BATCH_RECORDS`` within ``PROCTOR_BATCH_WAIT_S`` (``take_events``, as
the worker takes them), each record decoded with the contract's wire codec; no table, no
grading, no output. Prints one JSON line (records, events/s from the first record to the
last, peak RSS in MB) and exits.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from typing import Any

import faust

from services.contract.schemas import load_contract
from services.contract.wire import WireCodec, registry_client
from services.grader.settings import GraderSettings


def peak_rss_mb() -> float:
    """This process's VmHWM (ru_maxrss would carry the forking parent's size over)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    app_id, total_text, *topics = sys.argv[1:]
    total = int(total_text)
    s = GraderSettings()
    logging.basicConfig(level=logging.WARNING)
    codec = WireCodec(
        registry_client(s.schema_registry_url), load_contract(), topic_prefix=s.topic_prefix
    )
    app = faust.App(
        app_id,
        broker=f"kafka://{s.kafka_bootstrap}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="bench-faust-"),
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        autodiscover=False,
    )
    source = app.topic(*topics, key_type=bytes, value_type=bytes, acks=False)
    seen = {"n": 0, "first": 0.0}

    @app.agent(source, concurrency=1)
    async def decode(stream: Any) -> None:
        async for events in stream.take_events(s.batch_records, within=s.batch_wait_s):
            if seen["n"] == 0:
                seen["first"] = time.perf_counter()
            for e in events:
                m = e.message
                codec.decode(m.value, m.topic, m.partition, m.offset)
            seen["n"] += len(events)
            if seen["n"] >= total:
                seconds = max(1e-9, time.perf_counter() - seen["first"])
                rss_mb = peak_rss_mb()
                out = {"records": seen["n"], "events_per_s": seen["n"] / seconds, "rss_mb": rss_mb}
                print(json.dumps(out), flush=True)
                os._exit(0)

    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
