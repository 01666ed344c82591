"""The labelled corpus of postmortems and design reviews (``corpus/judge``).

Loaded and validated in one place so the benchmark and the regression test read the same
labels: every text exists, its split follows the stated rule, and every labelled point
belongs to the vocabulary of its kind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from services.core.textjudge import POINTS, TextKind
from services.errors import JudgeError
from services.judge.criteria import CRITERIA, EXPECTED_PATTERNS, FAULT_LAYERS, Weights

Split = Literal["dev", "held_out", "fresh", "blind", "sealed"]

#: The repository's corpus directory (services/judge/corpus.py -> repo root).
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "judge"
#: The rubric whose text-criteria weights the agreement figure uses.
DEFAULT_RUBRIC = Path(__file__).resolve().parents[2] / "rubrics" / "y3-final" / "v1.yaml"


@dataclass(frozen=True, slots=True)
class LabelledText:
    text_id: str
    kind: TextKind
    split: Split
    style: str
    path: Path
    points: frozenset[str]
    rationale: str
    fault_layer: str | None = None
    fault_kind: str | None = None

    def read(self) -> str:
        return self.path.read_text(encoding="utf-8")


#: Texts numbered from here on were written after a freeze of the judge: "fresh" after the
#: first, "blind" after the second (both then read and used for generic fixes), "sealed"
#: after the third: never read while the judge was changed, measured once after a freeze.
FRESH_FROM: dict[str, int] = {"dr": 45, "pm": 34}
BLIND_FROM: dict[str, int] = {"dr": 57, "pm": 43}
SEALED_FROM: dict[str, int] = {"dr": 67, "pm": 51}
#: The splits in the order they were written; only ``sealed`` was never looked at.
SPLITS: tuple[Split, ...] = ("dev", "held_out", "fresh", "blind", "sealed")


def _split_for(text_id: str) -> Split:
    number = int(re.sub(r"\D", "", text_id))
    if number >= SEALED_FROM.get(text_id[:2], 10**9):
        return "sealed"
    if number >= BLIND_FROM.get(text_id[:2], 10**9):
        return "blind"
    if number >= FRESH_FROM.get(text_id[:2], 10**9):
        return "fresh"
    return "held_out" if number % 3 == 0 else "dev"


def load_corpus(root: Path = DEFAULT_CORPUS) -> tuple[LabelledText, ...]:
    """All labelled texts, sorted by id; raises :class:`JudgeError` naming any bad entry."""
    labels_file = root / "labels.yaml"
    try:
        raw = yaml.safe_load(labels_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise JudgeError(
            f"no corpus labels at {labels_file}: run from a checkout that has corpus/judge"
        ) from exc
    except yaml.YAMLError as exc:
        raise JudgeError(f"{labels_file} is not valid YAML: {exc}") from exc
    texts = raw.get("texts") if isinstance(raw, dict) else None
    if not isinstance(texts, dict):
        raise JudgeError(f"{labels_file}: expected a 'texts' mapping of id -> labels")
    out = [_entry(root, text_id, entry) for text_id, entry in texts.items()]
    return tuple(sorted(out, key=lambda t: (t.kind, t.text_id)))


def _entry(root: Path, text_id: str, entry: Any) -> LabelledText:
    where = f"corpus label {text_id!r}"
    if not isinstance(entry, Mapping):
        raise JudgeError(f"{where}: expected a mapping")
    kind = entry.get("kind")
    if kind not in ("postmortem", "design_review"):
        raise JudgeError(f"{where}: kind must be postmortem or design_review, not {kind!r}")
    split = entry.get("split")
    if split != _split_for(text_id):
        raise JudgeError(
            f"{where}: split {split!r} breaks the rule (sealed from dr67/pm51, blind from dr57/pm43, "
            "fresh from dr45/pm34, "
            "else held_out iff the number is a multiple of 3)"
        )
    path = root / str(entry.get("file", ""))
    if not path.is_file():
        raise JudgeError(f"{where}: file {path} does not exist")
    points_raw = entry.get("points") or {}
    if not isinstance(points_raw, Mapping):
        raise JudgeError(f"{where}: points must map point -> rationale")
    unknown = sorted(set(points_raw) - POINTS)
    if unknown:
        raise JudgeError(
            f"{where}: unknown points {unknown}; the vocabulary is in services/core/textjudge.py"
        )
    layer = entry.get("fault_layer")
    fault_kind = entry.get("fault_kind")
    if kind == "postmortem":
        if layer not in EXPECTED_PATTERNS:
            raise JudgeError(
                f"{where}: fault_layer must be one of {sorted(EXPECTED_PATTERNS)}, not {layer!r}"
            )
        if FAULT_LAYERS.get(str(fault_kind)) != layer:
            raise JudgeError(
                f"{where}: fault_kind {fault_kind!r} is not a fault of layer {layer!r}"
            )
    return LabelledText(
        text_id=text_id,
        kind=cast(TextKind, kind),
        split=cast(Split, split),
        style=str(entry.get("style", "")),
        path=path,
        points=frozenset(points_raw),
        rationale=str(entry.get("rationale", "")),
        fault_layer=str(layer) if layer else None,
        fault_kind=str(fault_kind) if fault_kind else None,
    )


def rubric_weights(path: Path = DEFAULT_RUBRIC) -> Weights:
    """(weight, partial credit) of each text criterion, read from the rubric file.

    Raises :class:`JudgeError` if the file or one of the text criteria is missing, so the
    agreement figure never silently falls back to made-up weights.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise JudgeError(f"cannot read the rubric {path}: {exc}") from exc
    wanted = {c for names in CRITERIA.values() for c in names}
    found: dict[str, tuple[float, float]] = {}
    for entry in (raw or {}).get("criteria", []) if isinstance(raw, dict) else []:
        if isinstance(entry, dict) and entry.get("id") in wanted:
            found[str(entry["id"])] = (
                float(entry.get("weight", 0.0)),
                float(entry.get("partial_credit", 0.5)),
            )
    missing = sorted(wanted - set(found))
    if missing:
        raise JudgeError(f"{path} has no text criteria {missing}")
    return found
