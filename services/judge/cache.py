"""Verdicts kept by content, so a regrade with the language-model judge is reproducible.

The key is the digest of what decides a verdict: the judge and its version (model, prompt
version), the text's kind (which rubric items and points it is judged for, with that
vocabulary) and the text itself. A regrade or replay of the same artifacts finds every
verdict here and asks the model nothing; a new model or prompt version misses and asks.

Only the model's own verdicts are kept: a fallback verdict (the model failed) is not, so
a passing outage never becomes the recorded grade. One JSON file per key, written to a
temporary name and renamed, so a reader never sees half a verdict and concurrent writers
of one key write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from services.core.textjudge import Finding, TextJudge, TextKind, TextVerdict
from services.errors import JudgeError
from services.judge.offline import DESIGN_REVIEW_POINTS, POSTMORTEM_POINTS

DEFAULT_DIR = Path.home() / ".cache" / "proctor" / "verdicts"


class VersionedJudge(TextJudge, Protocol):
    @property
    def version(self) -> str: ...


def verdict_key(judge: str, version: str, kind: TextKind, text: str) -> str:
    """The content address of a verdict: judge, its version, the kind's rubric items, text."""
    vocabulary = DESIGN_REVIEW_POINTS if kind == "design_review" else POSTMORTEM_POINTS
    h = hashlib.sha256()
    for part in (judge, version, kind, ",".join(sorted(vocabulary)), text):
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()


def _dump(v: TextVerdict) -> dict[str, Any]:
    return {
        "kind": v.kind,
        "judge": v.judge,
        "findings": [[f.point, list(f.sentences), f.why] for f in v.findings],
        "confidence": [[p, c] for p, c in v.confidence],
    }


def _load(obj: dict[str, Any]) -> TextVerdict:
    return TextVerdict(
        kind=obj["kind"],
        judge=str(obj["judge"]),
        findings=tuple(Finding(str(p), tuple(s), str(w)) for p, s, w in obj["findings"]),
        confidence=tuple((str(p), float(c)) for p, c in obj["confidence"]),
    )


class VerdictCache:
    """A directory of verdicts by content address."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> TextVerdict | None:
        path = self._path(key)
        try:
            return _load(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise JudgeError(
                f"the cached verdict {path} is unreadable ({exc}); delete it to judge the text again"
            ) from exc

    def put(self, key: str, verdict: TextVerdict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(_dump(verdict), out, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class CachedJudge:
    """A judge whose own verdicts are kept by content; a hit asks the inner judge nothing."""

    def __init__(self, inner: VersionedJudge, cache: VerdictCache) -> None:
        self._inner = inner
        self._cache = cache
        #: how many verdicts came from the cache and how many from the judge (for tests, CLI)
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self._inner.name

    def judge(self, kind: TextKind, text: str) -> TextVerdict:
        key = verdict_key(self._inner.name, self._inner.version, kind, text)
        cached = self._cache.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        verdict = self._inner.judge(kind, text)
        if not verdict.fallback_reason:
            self._cache.put(key, verdict)
        return verdict
