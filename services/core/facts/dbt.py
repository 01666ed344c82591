"""What dbt runs tell: which models succeeded, which tests passed or failed, and the DAG.

A ``dbt.run`` carries one result per node (``run_results.json`` joined with the
manifest's ``depends_on``), so these facts look inside ``results``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.core.context import ExamContext, Point
from services.core.events import Event
from services.core.facts.base import Fact, FactSpec, to_point
from services.core.matching import integer, matching_keys, records, strings, text


def _results(ev: Event) -> tuple[Mapping[str, Any], ...]:
    return records(ev.data.get("results"))


def _link(links: dict[str, dict[str, Point]], a: str, bs: Any, p: Point) -> bool:
    """Record edges a -> b with the earliest point each was seen; True when anything changed."""
    changed = False
    got = links.setdefault(a, {})
    for b in bs:
        cur = got.get(b)
        if cur is None or p < cur:
            got[b] = p
            changed = True
    return changed


def _until(links: Mapping[str, Point], close_ms: int) -> set[str]:
    return {k for k, p in links.items() if p[0] <= close_ms}


def _dump_links(links: dict[str, dict[str, Point]]) -> Any:
    return {a: {b: list(p) for b, p in bs.items()} for a, bs in links.items()}


def _load_links(obj: Any) -> dict[str, dict[str, Point]]:
    return {a: {b: to_point(p) for b, p in bs.items()} for a, bs in obj.items()}


class DbtGraph(Fact):
    """Earliest successful build per model, earliest passing test per tested node, the DAG.

    DAG edges and relation names carry the earliest run that showed them, so what a
    criterion sees is exactly what was known by its close.
    """

    __slots__ = ("_models", "deps", "model_ok", "relations", "spec", "test_pass")

    def __init__(self, spec: DbtGraphSpec) -> None:
        self.spec = spec
        self.model_ok: dict[str, Point] = {}
        self.test_pass: dict[str, Point] = {}
        self.deps: dict[str, dict[str, Point]] = {}
        self.relations: dict[str, dict[str, Point]] = {}
        #: (declared name, close) -> model ids, valid until the next change (not state)
        self._models: dict[tuple[str, int], list[str]] = {}

    def accepts(self, ev: Event) -> bool:
        return ev.type == "dbt.run"

    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        p = (ev.ts_ms, ev.event_id)
        changed = False
        for r in _results(ev):
            uid = text(r.get("unique_id"))
            if not uid:
                continue
            rtype = text(r.get("resource_type"))
            status = text(r.get("status"))
            if rtype == "model":
                changed |= _link(self.deps, uid, strings(r.get("depends_on")), p)
                rel = text(r.get("relation_name"))
                if rel:
                    changed |= _link(self.relations, rel, (uid,), p)
                if status in self.spec.model_ok:
                    cur = self.model_ok.get(uid)
                    if cur is None or p < cur:
                        self.model_ok[uid] = p
                        changed = True
            elif rtype == "test" and status in self.spec.test_ok:
                for dep in strings(r.get("depends_on")):
                    cur = self.test_pass.get(dep)
                    if cur is None or p < cur:
                        self.test_pass[dep] = p
                        changed = True
        if changed:
            self._models.clear()
        return changed

    def models(self, declared: str, close_ms: int) -> list[str]:
        """Model unique ids naming the declared model (by id suffix or relation name)."""
        hit = self._models.get((declared, close_ms))
        if hit is not None:
            return hit
        known = {u for u, p in self.model_ok.items() if p[0] <= close_ms}
        known |= {
            u for u, deps in self.deps.items() if any(p[0] <= close_ms for p in deps.values())
        }
        found = set(matching_keys(known, declared))
        rels = {r: _until(uids, close_ms) for r, uids in self.relations.items()}
        for rel in matching_keys([r for r, uids in rels.items() if uids], declared):
            found |= rels[rel]
        if len(self._models) > 64:
            self._models.clear()
        out = self._models[(declared, close_ms)] = sorted(found)
        return out

    def upstream(self, uid: str, close_ms: int) -> set[str]:
        """Every node the model depends on, transitively, as the runs up to ``close_ms`` showed it."""
        seen: set[str] = set()
        todo = list(_until(self.deps.get(uid, {}), close_ms))
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            todo.extend(_until(self.deps.get(n, {}), close_ms))
        return seen

    def dump(self) -> Any:
        return {
            "ok": {k: list(v) for k, v in self.model_ok.items()},
            "pass": {k: list(v) for k, v in self.test_pass.items()},
            "deps": _dump_links(self.deps),
            "rel": _dump_links(self.relations),
        }

    def load(self, obj: Any) -> None:
        self.model_ok = {k: to_point(v) for k, v in obj["ok"].items()}
        self.test_pass = {k: to_point(v) for k, v in obj["pass"].items()}
        self.deps = _load_links(obj["deps"])
        self.relations = _load_links(obj["rel"])
        self._models = {}


@dataclass(frozen=True, slots=True)
class DbtGraphSpec(FactSpec):
    model_ok: tuple[str, ...] = ("success",)
    test_ok: tuple[str, ...] = ("pass",)
    types = ("dbt.run",)

    def make(self) -> DbtGraph:
        return DbtGraph(self)


class DbtLatestSuccess(Fact):
    """Per model, the latest successful build up to the end of a part's time box."""

    __slots__ = ("latest", "spec")

    def __init__(self, spec: DbtLatestSuccessSpec) -> None:
        self.spec = spec
        self.latest: dict[str, Point] = {}

    def accepts(self, ev: Event) -> bool:
        return ev.type == "dbt.run"

    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        w = ctx.windows.get(self.spec.part)
        if w is None or ev.ts_ms > w.box_end_ms:
            return False
        p = (ev.ts_ms, ev.event_id)
        changed = False
        for r in _results(ev):
            uid = text(r.get("unique_id"))
            if (
                uid
                and text(r.get("resource_type")) == "model"
                and text(r.get("status")) in self.spec.ok
            ):
                cur = self.latest.get(uid)
                if cur is None or p > cur:
                    self.latest[uid] = p
                    changed = True
        return changed

    def dump(self) -> Any:
        return {k: list(v) for k, v in self.latest.items()}

    def load(self, obj: Any) -> None:
        self.latest = {k: to_point(v) for k, v in obj.items()}


@dataclass(frozen=True, slots=True)
class DbtLatestSuccessSpec(FactSpec):
    part: str
    ok: tuple[str, ...] = ("success",)
    types = ("dbt.run",)

    @property
    def gate(self) -> str | None:
        return f"part:{self.part}"

    def make(self) -> DbtLatestSuccess:
        return DbtLatestSuccess(self)


class FailingTests(Fact):
    """Per test, the earliest failing run (failures >= min) at or after an anchor."""

    __slots__ = ("deps", "first", "spec")

    def __init__(self, spec: FailingTestsSpec) -> None:
        self.spec = spec
        self.first: dict[str, Point] = {}
        self.deps: dict[str, dict[str, Point]] = {}

    def _failing(self, r: Mapping[str, Any]) -> bool:
        failures = integer(r.get("failures"))
        return (
            text(r.get("resource_type")) == "test"
            and text(r.get("status")) in self.spec.statuses
            and failures is not None
            and failures >= self.spec.min_failures
        )

    def accepts(self, ev: Event) -> bool:
        return ev.type == "dbt.run" and any(self._failing(r) for r in _results(ev))

    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        anchor = ctx.anchors.get(self.spec.after)
        if anchor is None or ev.ts_ms < anchor:
            return False
        p = (ev.ts_ms, ev.event_id)
        changed = False
        for r in _results(ev):
            uid = text(r.get("unique_id"))
            if not uid or not self._failing(r):
                continue
            changed |= _link(self.deps, uid, strings(r.get("depends_on")), p)
            cur = self.first.get(uid)
            if cur is None or p < cur:
                self.first[uid] = p
                changed = True
        return changed

    def tested(self, test: str, close_ms: int) -> set[str]:
        """Nodes the failing test depends on, as far as runs up to ``close_ms`` showed."""
        return _until(self.deps.get(test, {}), close_ms)

    def dump(self) -> Any:
        return {
            "first": {k: list(p) for k, p in self.first.items()},
            "deps": _dump_links(self.deps),
        }

    def load(self, obj: Any) -> None:
        self.first = {k: to_point(v) for k, v in obj["first"].items()}
        self.deps = _load_links(obj["deps"])


@dataclass(frozen=True, slots=True)
class FailingTestsSpec(FactSpec):
    after: str = "row.broken"
    statuses: tuple[str, ...] = ("fail",)
    min_failures: int = 1
    types = ("dbt.run",)

    @property
    def gate(self) -> str | None:
        return self.after

    def make(self) -> FailingTests:
        return FailingTests(self)
