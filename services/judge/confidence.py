"""How sure the offline judge is of each call: a score from its evidence margin.

A rule-based judge has no probability of its own; what it has is a margin. A point made
by several sentences is a safer call than one made by a single sentence; a point not
made in a text that never names its concept is a safer "no" than one whose concept the
text names while the rules refused the claim (a negation, a bare list, no trade-off):
that is where the rules and a human reader part most often. Each call falls in one of
these four margins and gets its score.

The scores are a fixed prior ordering of the margins, not a fit: the splits the judge
was tuned on agree with it everywhere, so they cannot calibrate it, and the sealed split
must stay unfitted to measure it. ``bench/judge.py`` measures on the sealed split what
the ordering is worth: how often a state held back for review was wrong, against one
let through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from services.judge import lexicon as lx

#: made by two or more sentences / by one / not made, concept named / not made, never named
MADE_TWICE: Final = 0.9
MADE_ONCE: Final = 0.75
NEAR_MISS: Final = 0.55
NOT_NAMED: Final = 0.95

#: a point's concept named anywhere (the words a keyword reader would react to)
MENTIONS: Final[Mapping[str, re.Pattern[str]]] = {
    **lx.ISSUE_TOPIC,
    **lx.ALT_TOPIC,
    **lx.PATTERN_TOPIC,
    "tone.opens_positive": lx.POSITIVE_OPENING,
    "tone.proposes": lx.PROPOSAL,
    "tone.gatekeeping": lx.GATEKEEPING,
    "postmortem.action_items": re.compile(r"\baction|follow ?ups?|next steps\b"),
    "action.new_test": re.compile(r"\btests?\b|expectations?"),
    "action.new_alert": lx.ALERT_ACTION,
    "tone.blameless": lx.BLAMELESS_STATED,
    "tone.blaming": lx.BLAMING,
    "issue.slow_not_trino": lx.SLOW_CAUSE,
}


def margin_confidence(
    allowed: frozenset[str], hits_per_point: Mapping[str, int], text: str
) -> tuple[tuple[str, float], ...]:
    """(point, confidence) for every point of the text's kind, sorted by point."""
    norm = text.lower().replace("-", " ")
    out: list[tuple[str, float]] = []
    for point in sorted(allowed):
        hits = hits_per_point.get(point, 0)
        if hits >= 2:
            c = MADE_TWICE
        elif hits == 1:
            c = MADE_ONCE
        else:
            q = MENTIONS.get(point)
            c = NEAR_MISS if q is not None and q.search(norm) else NOT_NAMED
        out.append((point, c))
    return tuple(out)
