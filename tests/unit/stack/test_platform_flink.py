"""services/platform/flink.py without a JVM: the job's properties, validation, cache keys."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from services.errors import StackError
from services.platform import flink
from services.platform.flink import PipelineJob, source_digest
from services.stack.config import StackConfig

pytestmark = pytest.mark.unit


def job(**kw: object) -> PipelineJob:
    base = StackConfig(state_dir=Path("/srv/stack"))
    return PipelineJob.on_stack(
        base, "orders-enrich", "cdc.orders", "customers", "lake.orders", **kw
    )


def parse_properties(text: str) -> dict[str, str]:
    """java.util.Properties' reading of what we write (the subset of escapes we emit)."""
    out = {}
    for line in io.StringIO(text):
        line = line.rstrip("\n")
        i, key = 0, []
        while line[i] != "=":
            if line[i] == "\\":
                i += 1
            key.append(line[i])
            i += 1
        raw, value, j = line[i + 1 :], [], 0
        while j < len(raw):
            if raw[j] == "\\" and raw[j + 1] == "u":
                value.append(chr(int(raw[j + 2 : j + 6], 16)))
                j += 6
                continue
            if raw[j] == "\\":
                j += 1
            value.append(raw[j])
            j += 1
        out["".join(key)] = "".join(value)
    return out


def test_on_stack_reads_the_stack_addresses_and_splits_the_sink_name() -> None:
    j = job()
    assert j.kafka_bootstrap == "127.0.0.1:19092"
    assert j.jdbc_url == "jdbc:postgresql://127.0.0.1:15432/iceberg"
    assert j.warehouse == "file:///srv/stack/warehouse"
    assert (j.catalog, j.namespace, j.table) == ("proctor", "lake", "orders")
    assert j.checkpointing == "exactly_once"
    with pytest.raises(StackError, match=r"namespace\.table"):
        PipelineJob.on_stack(StackConfig(), "j", "t", "d", "no_namespace")


def test_properties_round_trip_with_escapes() -> None:
    j = job(checkpointing="at_least_once", checkpoint_interval_ms=250)
    props = parse_properties(j.properties())
    assert props["checkpointing"] == "at_least_once"
    assert props["checkpoint.interval.ms"] == "250"
    assert props["kafka.bootstrap"] == "127.0.0.1:19092"  # ':' escaped, read back
    assert props["iceberg.warehouse"] == "file:///srv/stack/warehouse"
    assert props["kafka.group"] == "proctor-orders-enrich"
    assert props["jdbc.password"] == ""
    assert "\\:" in j.properties()
    kept = job(table_properties=(("history.expire.max-snapshot-age-ms", "60000"),))
    assert (
        parse_properties(kept.properties())["table.history.expire.max-snapshot-age-ms"] == "60000"
    )


def test_modes_and_quotes_are_refused() -> None:
    with pytest.raises(StackError, match="checkpointing"):
        job(checkpointing="sometimes")
    with pytest.raises(StackError, match="positive"):
        job(checkpoint_interval_ms=0)
    with pytest.raises(StackError, match="quote"):
        job(jdbc_password="it's").properties()


def test_with_checkpointing_changes_only_the_mode() -> None:
    j = job()
    off = j.with_checkpointing("off")
    assert off.checkpointing == "off" and off.name == j.name and off.table == j.table
    assert j.checkpointing == "exactly_once"


def test_source_digest_changes_with_the_sources_and_the_jars(tmp_path: Path) -> None:
    src = tmp_path / "Job.java"
    src.write_text("class Job {}")
    one = source_digest([src], flink.COORDS)
    assert one == source_digest([src], flink.COORDS)
    assert one != source_digest([src], flink.COORDS[:-1])
    src.write_text("class Job { }")
    assert one != source_digest([src], flink.COORDS)


def test_the_job_source_is_shipped_with_the_module() -> None:
    assert (flink.JOB_SOURCES / f"{flink.MAIN_CLASS}.java").is_file()
