"""Pure parts of the poll loop: event ids, the position file, backoff."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.collectors.polling import Backoff, Pending, PositionStore, signal, signal_id
from services.core.events import Event
from services.errors import ConfigError

pytestmark = pytest.mark.unit


def test_signal_ids_are_deterministic_and_distinct() -> None:
    a = signal_id("basecamp-alice", "iceberg", ["iceberg.commit", "t", 1])
    assert a == signal_id("basecamp-alice", "iceberg", ["iceberg.commit", "t", 1])
    assert a != signal_id("basecamp-bob", "iceberg", ["iceberg.commit", "t", 1])
    assert a != signal_id("basecamp-alice", "iceberg", ["iceberg.commit", "t", 2])
    # the separator keeps ("a", "bc") and ("ab", "c") apart
    assert signal_id("p", "c", ["a", "bc"]) != signal_id("p", "c", ["ab", "c"])
    ev = signal("cdc.offsets", "basecamp-alice", "cdc-offsets", ["k"], 5, {"x": 1})
    assert ev.event_id == signal_id("basecamp-alice", "cdc-offsets", ["cdc.offsets", "k"])
    assert ev.ts_ms == 5 and ev.data == {"x": 1}


def test_position_store_round_trips_committed_and_pending(tmp_path: Path) -> None:
    store = PositionStore(tmp_path, "trino-rules", "basecamp/alice")
    assert store.load().position == {} and store.load().pending is None
    event = Event(
        "tool.used",
        "basecamp/alice",
        "id-1",
        1_795_770_000_000,
        {"tool": "trino", "action": "query", "target": None, "user": "bob"},
    )
    store.begin({"a": 1}, Pending({"a": 2}, (event,), {"topic": (3, 42)}))
    loaded = store.load()
    assert loaded.position == {"a": 1}
    assert loaded.pending is not None
    assert loaded.pending.position == {"a": 2}
    assert loaded.pending.events == (event,)
    assert loaded.pending.marks == {"topic": (3, 42)}
    store.commit({"a": 2})
    assert store.load().position == {"a": 2} and store.load().pending is None
    # one file per collector and platform, a safe name, no temporary files left behind
    assert [p.name for p in tmp_path.iterdir()] == ["trino-rules--basecamp_alice.json"]


def test_unreadable_position_file_names_the_file_and_the_way_out(tmp_path: Path) -> None:
    store = PositionStore(tmp_path, "dbt", "p")
    store.path.write_text("{half")
    with pytest.raises(ConfigError, match=r"dbt--p\.json is unreadable .* move it away"):
        store.load()


def test_backoff_grows_to_its_cap_and_resets() -> None:
    b = Backoff(initial_s=1, max_s=8, jitter=0.1)
    delays = [b.next() for _ in range(6)]
    for got, want in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert want * 0.9 <= got <= want * 1.1
    b.reset()
    assert b.next() <= 1.1
