"""A minimal Faust worker configured as the grader is: ``GraderSettings`` from the
environment, ``aiokafka_auth()`` as its broker credentials. It reads the control topic
into a changelogged table and exits 0 after the first record (used by test_broker_acls).

    python tests/adversarial/faust_probe.py TOPIC
"""

from __future__ import annotations

import asyncio
import os
import sys

import faust

from services.grader.settings import GraderSettings


def main(topic: str) -> None:
    s = GraderSettings()
    app = faust.App(
        s.app_id,
        broker=f"kafka://{s.kafka_bootstrap}",
        store="memory://",
        datadir=s.data_dir,
        topic_partitions=1,
        topic_allow_declare=True,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        **s.aiokafka_auth(),
    )
    source = app.topic(topic, key_type=bytes, value_type=bytes)
    table = app.Table("platforms", partitions=1, key_type=bytes, value_type=bytes)
    seen: list[bytes] = []

    @app.agent(source)
    async def read(stream: faust.StreamT[bytes]) -> None:
        async for key, value in stream.items():  # type: ignore[attr-defined]
            table[key] = value
            seen.append(value)
            print(f"RECORD {value.decode()}", flush=True)

    @app.timer(0.5)
    async def done() -> None:
        if seen:
            await asyncio.sleep(2)  # let the table's changelog write go out
            os._exit(0)

    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


if __name__ == "__main__":
    main(sys.argv[1])
