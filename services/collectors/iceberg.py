"""iceberg.commit: snapshots of the watched tables, with their summary and table properties.

Read from the catalog with pyiceberg. The position keeps, per table, the ids of the
snapshots already published (only those still in the table's metadata, so expiry keeps
it small) and a digest of the table properties. New snapshots are published oldest
first, with the snapshot's commit time as event time and the table's current properties.
A property change without a new snapshot (``ALTER TABLE ... SET PROPERTIES``) publishes
the current snapshot again with the new properties, at the metadata's update time; the
grader counts records per snapshot id, so the repeat adds no records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import click
from pydantic import Field
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from services.collectors.polling import Collector, PollResult, Position
from services.collectors.runner import common_options, run_one, split_common
from services.collectors.settings import SourceSettings, env_secret, parse_model
from services.connections import load_catalog
from services.errors import ProctorError

OPERATIONS = ("append", "overwrite", "replace", "delete")


class Settings(SourceSettings):
    catalog_name: str = Field(description="catalog name, as in the signals and in pyiceberg")
    properties: dict[str, str] = Field(
        default_factory=dict, description="pyiceberg catalog properties"
    )
    properties_env: dict[str, str] = Field(
        default_factory=dict, description="catalog property -> env var holding it (secrets)"
    )
    tables: tuple[str, ...] = Field(min_length=1, description="watched tables, namespace.table")
    max_snapshots_per_poll: int = Field(default=500, gt=0)


def props_digest(props: Mapping[str, str]) -> str:
    text = json.dumps(dict(props), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def commit_data(
    catalog: str, table: str, snap: Snapshot, props: Mapping[str, str]
) -> dict[str, Any]:
    summary = snap.summary
    operation = str(summary.operation.value) if summary is not None else "overwrite"
    if operation not in OPERATIONS:
        raise ProctorError(f"{table} snapshot {snap.snapshot_id}: unknown operation {operation!r}")
    extra = summary.additional_properties if summary is not None else {}
    return {
        "catalog": catalog,
        "table": table,
        "snapshot_id": snap.snapshot_id,
        "parent_snapshot_id": snap.parent_snapshot_id,
        "operation": operation,
        "summary": {str(k): str(v) for k, v in extra.items()},
        "table_properties": {str(k): str(v) for k, v in props.items()},
    }


class IcebergCollector(Collector):
    name = "iceberg"

    def __init__(self, settings: Settings, platform_id: str) -> None:
        super().__init__(platform_id)
        self.settings = settings
        self._catalog: Catalog | None = None

    @property
    def source(self) -> str:
        return f"iceberg catalog {self.settings.catalog_name}"

    def catalog(self) -> Catalog:
        if self._catalog is None:
            props = dict(self.settings.properties)
            for prop, var in self.settings.properties_env.items():
                props[prop] = env_secret(var, f"iceberg catalog property {prop}") or ""
            try:
                self._catalog = load_catalog(self.settings.catalog_name, props)
            except Exception as exc:  # pyiceberg raises several types for a bad catalog
                raise ProctorError(
                    f"cannot open Iceberg catalog {self.settings.catalog_name}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return self._catalog

    def describe(self, position: Position) -> str:
        parts = [f"{t}@{v.get('current')}" for t, v in sorted(position.items())]
        return ", ".join(parts)[:500]

    def poll(self, position: Position) -> PollResult:
        events = []
        new: dict[str, Any] = {}
        budget = self.settings.max_snapshots_per_poll
        lag = 0
        for name in self.settings.tables:
            try:
                table = self.catalog().load_table(name)
            except NoSuchTableError:
                continue  # not created yet: nothing to see
            except Exception:
                self._catalog = None  # reconnect next time
                raise
            found, state, left, budget = self._table(name, table, position.get(name, {}), budget)
            events.extend(found)
            new[name] = state
            lag += left
        return PollResult(tuple(events), new, lag)

    def _table(
        self, name: str, table: Table, old: Mapping[str, Any], budget: int
    ) -> tuple[list[Any], dict[str, Any], int, int]:
        meta = table.metadata
        props = dict(meta.properties)
        digest = props_digest(props)
        present = {s.snapshot_id for s in meta.snapshots}
        done = {int(i) for i in old.get("published", ()) if int(i) in present}
        todo = sorted(
            (s for s in meta.snapshots if s.snapshot_id not in done),
            key=lambda s: (s.timestamp_ms, s.sequence_number or 0),
        )
        take, left = todo[:budget], len(todo) - min(len(todo), budget)
        catalog = self.settings.catalog_name
        events = [
            self.signal(
                "iceberg.commit",
                [catalog, name, s.snapshot_id],
                s.timestamp_ms,
                commit_data(catalog, name, s, props),
            )
            for s in take
        ]
        current = meta.current_snapshot_id
        if not events and old.get("props") not in (None, digest) and current is not None:
            snap = table.snapshot_by_id(current)
            if snap is not None:
                events.append(
                    self.signal(
                        "iceberg.commit",
                        [catalog, name, current, "properties", digest],
                        meta.last_updated_ms,
                        commit_data(catalog, name, snap, props),
                    )
                )
        published = sorted(done | {s.snapshot_id for s in take})
        # Properties count as seen only once every snapshot is out (the last one carries them).
        seen_props = digest if not left else old.get("props")
        state = {"published": published, "props": seen_props, "current": current}
        return events, state, left, budget - len(take)

    def close(self) -> None:
        self._catalog = None


def build(settings: Settings, platform_id: str) -> IcebergCollector:
    return IcebergCollector(settings, platform_id)


@click.command("iceberg")
@click.option("--catalog-name", required=True, help="catalog name (pyiceberg and signals)")
@click.option(
    "--property",
    "properties",
    multiple=True,
    metavar="KEY=VALUE",
    help="pyiceberg catalog property (repeatable), e.g. uri=postgresql+psycopg2://...",
)
@click.option(
    "--property-env",
    "properties_env",
    multiple=True,
    metavar="KEY=ENVVAR",
    help="catalog property read from an env var (secrets)",
)
@click.option(
    "--table", "tables", multiple=True, required=True, help="namespace.table (repeatable)"
)
@common_options
def command(**kwargs: Any) -> None:
    """Publish iceberg.commit: snapshots and properties of the watched Iceberg tables."""
    common, own = split_common(kwargs)
    own["properties"] = _pairs(own["properties"], "--property")
    own["properties_env"] = _pairs(own["properties_env"], "--property-env")
    settings = parse_model(Settings, {"interval_s": common["interval_s"], **own}, "flags")
    run_one(lambda platform: build(settings, platform), common)


def _pairs(items: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=flag)
        out[key] = value
    return out
