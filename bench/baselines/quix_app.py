"""A Quix Streams application over the contract's input topics: decode plus a keyed
state update, exactly once. A baseline of ``bench/service.py``, run by it as a child in
a virtualenv of its own (quixstreams is not a dependency of the project).

    <quix-venv>/bin/python bench/baselines/quix_app.py BOOTSTRAP REGISTRY_URL GROUP TOTAL TOPIC...

Each record's Avro body is read with the writer schema its header names (fetched once
per schema id from the registry), then a per-key RocksDB counter is updated. Prints one
JSON line: records, events/s from the first record to the last, peak RSS in MB. Only
the standard library, quixstreams and fastavro (a quixstreams dependency) are used.
"""

from __future__ import annotations

import io
import json
import logging
import resource
import struct
import sys
import tempfile
import time
import urllib.request
from typing import Any

import fastavro
from quixstreams import Application

HEADER = struct.Struct(">bI")


def main() -> None:
    bootstrap, registry, group, total_text, *topics = sys.argv[1:]
    total = int(total_text)
    schemas: dict[int, Any] = {}

    def decode(value: bytes) -> Any:
        _magic, sid = HEADER.unpack_from(value)
        schema = schemas.get(sid)
        if schema is None:
            with urllib.request.urlopen(f"{registry}/schemas/ids/{sid}", timeout=10) as r:
                text = json.loads(r.read())["schema"]
            schema = schemas[sid] = fastavro.parse_schema(json.loads(text))
        return fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, None)

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
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"records": seen["n"], "events_per_s": seen["n"] / seconds, "rss_mb": rss_mb}))


if __name__ == "__main__":
    main()
