"""The rubric as data: parts, criteria, weights, time boxes and evidence rules.

A rubric file picks, for each criterion, a *rule kind* from the registry its loader
passes in (:mod:`services.rubrics` passes :mod:`services.core.rules`'s, so the rubric's
data model never imports the rules built on it) and gives it parameters (thresholds, asset names, event
conditions, text points). Adding a criterion of an existing kind or changing a threshold
is an edit of the file only. Everything is validated when the file is loaded, and every
error names the entry that is wrong, because a rubric that loads must never fail later
in the middle of an exam.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from services.core.model import OVERALL_PART
from services.errors import RubricError

if TYPE_CHECKING:
    from services.core.rules.base import Rule

_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
ANCHOR_TYPES = ("part.started", "fault.injected", "exam.started")


@dataclass(frozen=True, slots=True)
class AnchorSpec:
    """The control event that opens a part's time box (``part`` filters part.started)."""

    type: str
    part: int | None = None

    def describe(self) -> str:
        return f"{self.type} part={self.part}" if self.part is not None else self.type


@dataclass(frozen=True, slots=True)
class PartSpec:
    part_id: str
    title: str
    opens_on: AnchorSpec
    minutes: int

    @property
    def gate(self) -> str:
        """Name of the anchor that opens this part, as the engine's gates call it."""
        return f"part:{self.part_id}"


@dataclass(frozen=True, slots=True)
class CriterionSpec:
    criterion_id: str
    part: str
    title: str
    weight: float
    partial_credit: float
    collectors: tuple[str, ...]
    kind: str
    params: BaseModel


@dataclass(frozen=True, slots=True)
class Rubric:
    rubric_id: str
    version: str
    title: str
    heartbeat_grace_ms: int
    collectors: tuple[str, ...]
    parts: tuple[PartSpec, ...]
    criteria: tuple[CriterionSpec, ...]
    rules: tuple[Rule[Any], ...]
    #: the overall criterion whose ``met`` means the exam is passed
    pass_criterion: str

    def part(self, part_id: str) -> PartSpec | None:
        for p in self.parts:
            if p.part_id == part_id:
                return p
        return None

    def index(self, criterion_id: str) -> int:
        for i, c in enumerate(self.criteria):
            if c.criterion_id == criterion_id:
                return i
        raise KeyError(criterion_id)

    @property
    def ref(self) -> str:
        return f"{self.rubric_id} v{self.version}"


def _require(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise RubricError(f"{where}: missing '{key}'")
    return obj[key]


def _parse_part(pid: str, raw: Any, where: str) -> PartSpec:
    if not isinstance(raw, Mapping):
        raise RubricError(f"{where}: must be a mapping with title, opens_on and minutes")
    opens = _require(raw, "opens_on", where)
    if not isinstance(opens, Mapping) or opens.get("type") not in ANCHOR_TYPES:
        raise RubricError(f"{where}.opens_on: 'type' must be one of {list(ANCHOR_TYPES)}")
    apart = opens.get("part")
    if apart is not None and (not isinstance(apart, int) or isinstance(apart, bool)):
        raise RubricError(f"{where}.opens_on.part must be an integer")
    if opens["type"] == "part.started" and apart is None:
        raise RubricError(f"{where}.opens_on: part.started needs 'part'")
    minutes = _require(raw, "minutes", where)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
        raise RubricError(f"{where}.minutes must be a positive integer, got {minutes!r}")
    return PartSpec(
        part_id=pid,
        title=str(raw.get("title", f"Part {pid}")),
        opens_on=AnchorSpec(type=str(opens["type"]), part=apart),
        minutes=minutes,
    )


def _number(raw: Mapping[str, Any], key: str, default: float, where: str) -> float:
    v = raw.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise RubricError(f"{where}.{key} must be a number, got {v!r}")
    return float(v)


def _pydantic_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "params"
        parts.append(f"params.{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_rubric(
    obj: Any, source: str = "rubric", *, kinds: Mapping[str, type[Rule[Any]]]
) -> Rubric:
    """Validate a rubric document (the parsed YAML) and build its rules from ``kinds``
    (rule kind name -> rule class; ``services.core.rules.REGISTRY``).

    Raises :class:`RubricError` naming the file, the entry and the problem.
    """
    if not isinstance(obj, Mapping):
        raise RubricError(f"{source}: the document must be a mapping")
    rubric_id = _require(obj, "rubric_id", source)
    version = _require(obj, "version", source)
    if not isinstance(rubric_id, str) or not _ID.match(rubric_id):
        raise RubricError(f"{source}: rubric_id must be a lower-case id, got {rubric_id!r}")
    if not isinstance(version, str | int) or isinstance(version, bool):
        raise RubricError(f'{source}: version must be a string like "1", got {version!r}')
    version = str(version)
    where0 = f"{source} ({rubric_id} v{version})"
    grace = _number(obj, "heartbeat_grace_seconds", 90, where0)
    if grace <= 0:
        raise RubricError(f"{where0}: heartbeat_grace_seconds must be positive")
    collectors_raw = obj.get("collectors", [])
    if not isinstance(collectors_raw, list) or not all(isinstance(c, str) for c in collectors_raw):
        raise RubricError(f"{where0}: collectors must be a list of collector names")
    collectors = tuple(collectors_raw)

    parts_raw = _require(obj, "parts", where0)
    if not isinstance(parts_raw, Mapping) or not parts_raw:
        raise RubricError(f"{where0}: parts must be a non-empty mapping of part id to part")
    parts = tuple(
        _parse_part(str(pid), praw, f"{where0} parts.{pid}") for pid, praw in parts_raw.items()
    )
    part_ids = {p.part_id for p in parts}
    if OVERALL_PART in part_ids:
        raise RubricError(f"{where0}: '{OVERALL_PART}' is reserved for the overall verdicts")

    crit_raw = _require(obj, "criteria", where0)
    if not isinstance(crit_raw, list) or not crit_raw:
        raise RubricError(f"{where0}: criteria must be a non-empty list")
    specs: list[CriterionSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(crit_raw):
        label = f"{where0} criteria[{i}]"
        if not isinstance(raw, Mapping):
            raise RubricError(f"{label}: must be a mapping")
        cid = raw.get("id")
        if not isinstance(cid, str) or not _ID.match(cid):
            raise RubricError(
                f"{label}: 'id' must be a lower-case id like p1.cdc_source, got {cid!r}"
            )
        label = f"{where0} criterion {cid}"
        if cid in seen:
            raise RubricError(f"{label}: duplicate id")
        seen.add(cid)
        part = str(_require(raw, "part", label))
        if part != OVERALL_PART and part not in part_ids:
            raise RubricError(
                f"{label}: part {part!r} is not one of {[*sorted(part_ids), OVERALL_PART]}"
            )
        kind = _require(raw, "rule", label)
        rule_cls = kinds.get(kind) if isinstance(kind, str) else None
        if rule_cls is None:
            raise RubricError(f"{label}: unknown rule kind {kind!r}; known: {sorted(kinds)}")
        if rule_cls.overall != (part == OVERALL_PART):
            need = "the overall part" if rule_cls.overall else "a numbered part"
            raise RubricError(f"{label}: rule {kind} belongs to {need}")
        weight = _number(raw, "weight", 0.0, label)
        if weight < 0:
            raise RubricError(f"{label}: weight must not be negative")
        if part == OVERALL_PART and weight != 0:
            raise RubricError(f"{label}: overall verdicts carry no weight (use 0)")
        partial = _number(raw, "partial_credit", 0.5, label)
        if not 0 <= partial <= 1:
            raise RubricError(f"{label}: partial_credit must be between 0 and 1")
        ccols = raw.get("collectors", [])
        if not isinstance(ccols, list) or not all(isinstance(c, str) for c in ccols):
            raise RubricError(f"{label}: collectors must be a list of names")
        unknown = [c for c in ccols if c not in collectors]
        if unknown:
            raise RubricError(f"{label}: collectors {unknown} are not declared in 'collectors'")
        try:
            params = rule_cls.params_model.model_validate(raw.get("params") or {})
        except ValidationError as exc:
            raise RubricError(f"{label} (rule {kind}): {_pydantic_message(exc)}") from exc
        specs.append(
            CriterionSpec(
                criterion_id=cid,
                part=part,
                title=str(raw.get("title", cid)),
                weight=weight,
                partial_credit=partial,
                collectors=tuple(ccols),
                kind=kind,
                params=params,
            )
        )
    rules = tuple(kinds[s.kind](s) for s in specs)
    pass_id = obj.get("pass_criterion", "overall.pass")
    if not any(s.criterion_id == pass_id and s.part == OVERALL_PART for s in specs):
        raise RubricError(
            f"{where0}: pass_criterion {pass_id!r} is not an overall criterion of the rubric"
        )
    rubric = Rubric(
        rubric_id=rubric_id,
        version=version,
        title=str(obj.get("title", rubric_id)),
        heartbeat_grace_ms=int(grace * 1000),
        collectors=collectors,
        parts=parts,
        criteria=tuple(specs),
        rules=rules,
        pass_criterion=str(pass_id),
    )
    for spec, rule in zip(specs, rules, strict=True):
        for problem in rule.check(rubric):
            raise RubricError(
                f"{where0} criterion {spec.criterion_id} (rule {spec.kind}): {problem}"
            )
    return rubric
