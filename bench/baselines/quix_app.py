"""A Quix Streams application over the contract's input topics: decode plus a keyed
state update, exactly once. A baseline of ``bench/service.py``, run by it as a child in
a virtualenv of its own (quixstreams is not a dependency of the project).

    <quix-venv>/bin/python bench/baselines/quix_app.py BOOTSTRAP REGISTRY_URL GROUP TOTAL TOPIC...

Each record is decoded with the contract's wire codec, as the plain loop decodes it
(the project's tree is on PYTHONPATH; its contract module needs only confluent-kafka's
registry client and fastavro, which quixstreams brings), then a per-key RocksDB counter
is updated. Prints one JSON line: records, events/s from the first record to the last,
peak RSS in MB.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from typing import Any

from quixstreams import Application, message_context

from services.contract.schemas import load_contract
from services.contract.wire import WireCodec, registry_client


def peak_rss_mb() -> float:
    """This process's VmHWM (ru_maxrss would carry the forking parent's size over)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    bootstrap, registry, group, total_text, *topics = sys.argv[1:]
    total = int(total_text)
    prefix = os.environ.get("PROCTOR_TOPIC_PREFIX", "")
    codec = WireCodec(registry_client(registry), load_contract(), topic_prefix=prefix)

    def decode(value: bytes) -> Any:
        ctx = message_context()
        return codec.decode(value, ctx.topic, ctx.partition, ctx.offset)

    def count(value: Any, state: Any) -> None:
        state.set("n", state.get("n", 0) + 1)

    seen = {"n": 0, "first": 0.0, "last": 0.0}
    holder: list[Application] = []

    def processed(topic: str, partition: int, offset: int) -> None:
        if seen["n"] == 0:
            seen["first"] = time.perf_counter()
        seen["n"] += 1
        if seen["n"] >= total:
            seen["last"] = time.perf_counter()
            holder[0].stop()

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        state_dir=tempfile.mkdtemp(prefix="bench-quix-"),
        loglevel=logging.WARNING,
        on_message_processed=processed,
    )
    holder.append(app)
    for name in topics:
        topic = app.topic(name, key_deserializer="bytes", value_deserializer="bytes")
        sdf = app.dataframe(topic)
        sdf = sdf.apply(decode)
        sdf.update(count, stateful=True)
    app.run()
    seconds = max(1e-9, seen["last"] - seen["first"])
    rss_mb = peak_rss_mb()
    print(json.dumps({"records": seen["n"], "events_per_s": seen["n"] / seconds, "rss_mb": rss_mb}))


if __name__ == "__main__":
    main()
