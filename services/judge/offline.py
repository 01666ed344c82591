"""The offline judge: sentence-level, rule-based, explainable, no network.

A point counts only when a sentence *makes* it, not when it mentions a word:

- issues need the topic (the bill, the way back, training jobs...) and, in the same
  sentence, a claim that the design lacks it (a deficiency, a pointed question, "grows
  with usage"); a dismissal ("not worried about cost") cancels it;
- alternatives need a proposal context, a predicate, and a trade-off in the same sentence
  or the next ones of its paragraph; a rejected alternative does not count;
- patterns need a predicate and words that explain beyond the pattern's own name, so a
  bare list of pattern names never counts; a denial ("not a caching problem") cancels;
- postmortem actions are found in their section (or an ``Actions:`` lead-in) and must be
  concrete (a verb and an object), not refused ("decided against an alert").

Every finding carries the sentences it rests on and a one-line reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from services.core.textjudge import POINTS, Finding, TextKind, TextVerdict
from services.judge import lexicon as lx
from services.judge.confidence import margin_confidence
from services.judge.language import (
    BASE_VERBS,
    clause_around,
    explanatory,
    has_predicate,
    negated_before,
    normalise,
    tokens,
)
from services.judge.segment import Sentence, segment

DESIGN_REVIEW_POINTS: frozenset[str] = frozenset(
    p
    for p in POINTS
    if p.startswith(("issue.", "alternative.", "pattern."))
    or p in {"tone.opens_positive", "tone.proposes", "tone.gatekeeping"}
)
POSTMORTEM_POINTS: frozenset[str] = frozenset(
    p
    for p in POINTS
    if p.startswith(("pattern.", "action.", "postmortem."))
    or p in {"tone.blameless", "tone.blaming"}
)
#: Order in which findings are reported (the vocabulary's order in textjudge.py).
_ORDER: tuple[str, ...] = tuple(sorted(POINTS, key=lambda p: (p.split(".")[0], p)))

_META_SENTENCE = re.compile(
    r"\bp[23]\.\w+|\bissues? found\b|\bpatterns? cited\b|\bsenior tone\b|\bkeywords?\b|\u2714|(?:^|\s)#[a-z]"
)
_MAX_EVIDENCE = 4


@dataclass(frozen=True, slots=True)
class _Hit:
    point: str
    sentences: tuple[int, ...]
    why: str


class _Doc:
    """A segmented text with the neighbourhood queries the rules need."""

    def __init__(self, text: str) -> None:
        self.sentences = segment(text)
        self._by_block: dict[int, list[Sentence]] = {}
        for s in self.sentences:
            if not s.is_heading:
                self._by_block.setdefault(s.block, []).append(s)

    def prose(self) -> Iterator[Sentence]:
        """Sentences that can make a point: not headings, not rubric/keyword meta-talk."""
        for s in self.sentences:
            if not s.is_heading and not _META_SENTENCE.search(s.norm):
                yield s

    def before(self, s: Sentence, n: int) -> list[Sentence]:
        block = self._by_block.get(s.block, [])
        i = block.index(s)
        return block[max(0, i - n) : i]

    def after(self, s: Sentence, n: int) -> list[Sentence]:
        block = self._by_block.get(s.block, [])
        i = block.index(s)
        return block[i + 1 : i + 1 + n]


def _quote(m: re.Match[str] | None) -> str:
    return f"'{m.group(0).strip()}'" if m else ""


def _is_list(text: str) -> bool:
    """Three or more comma/semicolon items, most of them one to three words: a list, not a claim."""
    items = [i for i in re.split(r"[,;]", text) if tokens(i)]
    if len(items) < 3:
        return False
    short = sum(1 for i in items if len(tokens(i)) <= 3)
    return short >= 0.75 * len(items)


# ------------------------------------------------------------------------------ issues
def _issue_topic(
    doc: _Doc, s: Sentence, point: str
) -> tuple[re.Match[str] | None, Sentence | None]:
    pattern = lx.ISSUE_TOPIC[point]
    m = pattern.search(s.norm)
    if m:
        return m, None
    for prev in reversed(doc.before(s, 2)):
        m = pattern.search(prev.norm)
        if m:
            return m, prev
    return None, None


def _issue_topics_in(text: str) -> int:
    return sum(1 for p in lx.ISSUE_TOPIC.values() if p.search(text)) + (
        1 if lx.SLOW_CAUSE.search(text) else 0
    )


def _issue_cue(
    point: str, s: Sentence, topic_in_sentence: re.Match[str] | None
) -> re.Match[str] | None:
    text = s.norm
    if topic_in_sentence is not None and _issue_topics_in(text) >= 3:
        # A sentence naming three or more issues is a list unless each clause claims its own.
        text = clause_around(text, topic_in_sentence.start(), topic_in_sentence.end())
        if len(tokens(text)) <= 2 and s.label:
            text = s.label + " " + text
    if point == "issue.no_cost_projection":
        return lx.COST_CUE.search(text) or (
            lx.DEFICIENCY.search(text)
            if re.search(r"\b(estimat\w*|projection|forecast|figure|number|budget)\b", text)
            else None
        )
    if point == "issue.federation_loss":
        m = lx.DEFICIENCY.search(text) or lx.LOSS.search(text)
    else:
        m = lx.DEFICIENCY.search(text)
    if m is None and s.is_question:
        m = re.search(r"\?", s.text)
    if m is None and _first_word(s) in lx.REQUESTS:
        m = re.match(r"\w+", s.body)  # "Describe how we return to the lakehouse ..."
    if m is None and s.kind == "bullet" and not _is_list(s.body):
        m = lx.DEFICIENCY_SECTION.search(
            s.section
        )  # "## What is missing" then "- An exit plan ..."
    return m


def _slow_hit(doc: _Doc, s: Sentence) -> _Hit | None:
    diag = lx.SLOW_DIAG.search(s.norm)
    if diag is None:
        return None
    window = [s, *reversed(doc.before(s, 2))]
    cause = next(((w, m) for w in window if (m := lx.SLOW_CAUSE.search(w.norm))), None)
    if cause is not None:
        w, m = cause
        ids = tuple(sorted({s.index, w.index}))
        return _Hit(
            "issue.slow_not_trino",
            ids,
            f"another cause of the slowness ({_quote(m)}) is raised with {_quote(diag)}",
        )
    strong = lx.SLOW_DIAG_STRONG.search(s.norm)
    topic = next(((w, m) for w in window if (m := lx.SLOW_TOPIC.search(w.norm))), None)
    if strong and topic:
        w, m = topic
        ids = tuple(sorted({s.index, w.index}))
        return _Hit(
            "issue.slow_not_trino",
            ids,
            f"the slowness ({_quote(m)}) is not shown to be Trino's: {_quote(strong)}",
        )
    return None


def _issues(doc: _Doc) -> Iterator[_Hit]:
    for s in doc.prose():
        if (
            lx.ISSUE_DISMISSED.search(s.norm)
            or lx.CONCEPTS_DISMISSED.search(s.norm)
            or _keyword_dense(s)
        ):
            continue
        if lx.PROPOSAL_SECTION.search(s.section) and not s.is_question:
            continue
        hit = _slow_hit(doc, s)
        if hit:
            yield hit
        for point in lx.ISSUE_TOPIC:
            topic, source = _issue_topic(doc, s, point)
            if topic is None:
                label_topic = lx.ISSUE_TOPIC[point].search(s.label) if s.label else None
                if label_topic is None:
                    continue
                topic = label_topic
            cue = _issue_cue(point, s, topic if source is None else None)
            if cue is None:
                continue
            ids = tuple(sorted({s.index} | ({source.index} if source else set())))
            yield _Hit(
                point, ids, f"{_quote(topic)} with a claim that the design lacks it: {_quote(cue)}"
            )


# ------------------------------------------------------------------------ alternatives
def _first_word(s: Sentence) -> str:
    body = re.sub(
        r"^(?:first|second|third|then|also|and|or|instead|finally|next)\s*,?\s*", "", s.body
    )
    body = re.sub(r"^(?:if|when|once|after|before|until|unless)\b[^,]{0,100},\s*", "", body)
    body = re.sub(r"^[a-z]+ \d+\s*", "", body) if re.match(r"^[a-z]{1,5} \d+\b", body) else body
    words = tokens(body)
    return words[0] if words else ""


def _is_imperative(s: Sentence) -> bool:
    return _first_word(s) in lx.IMPERATIVES and len(s.words) >= 4 and not _is_list(s.body)


_PROPOSAL_LABEL = re.compile(
    r"alternativ|option|suggest|instead|\btry\b|proposal|recommend|\bidea\b|\broute\b|\bapproach\b"
)


def _proposal_context(s: Sentence) -> re.Match[str] | str | None:
    if lx.PROPOSAL_SECTION.search(s.section) or (s.label and _PROPOSAL_LABEL.search(s.label)):
        return "the section proposes alternatives"
    m = lx.PROPOSAL.search(s.norm)
    if m:
        return m
    if _is_imperative(s) or (
        s.label and tokens(s.label)[:1] and tokens(s.label)[0] in lx.IMPERATIVES
    ):
        return "an imperative suggestion"
    return None


def _trade_off(point: str, s: Sentence, topic_end: int) -> re.Match[str] | None:
    specific = lx.ALT_TRADE[point].search(s.norm) or lx.STATED_TRADE.search(s.norm)
    if specific:
        return specific
    for m in lx.GENERIC_TRADE.finditer(s.norm):
        rest = tokens(s.norm[m.end() :])
        if len(explanatory(rest)) >= 2 and m.start() >= 0:
            return m
    return None


def _alternatives(doc: _Doc) -> Iterator[_Hit]:
    for s in doc.prose():
        if _keyword_dense(s):
            continue
        for point, pattern in lx.ALT_TOPIC.items():
            topic = pattern.search(s.norm)
            if topic is None:
                continue
            clause = clause_around(s.norm, topic.start(), topic.end())
            if lx.ALT_REJECTED.search(clause) or negated_before(s.norm, topic.start(), 3):
                continue
            if sum(1 for p in lx.ALT_TOPIC.values() if p.search(clause)) >= 3:
                continue  # a list of alternatives in one clause
            if _is_list(clause):
                continue
            context = _proposal_context(s)
            if context is None:
                context = next(
                    (
                        c
                        for p in reversed(doc.before(s, 3))
                        if (c := _proposal_context(p)) is not None
                    ),
                    None,
                )
            if context is None:
                continue
            found: tuple[Sentence, re.Match[str]] | None = None
            window = [s] if s.kind == "table_row" else [s, *doc.after(s, 2)]
            used: list[Sentence] = []
            for w in window:
                if (
                    w is not s
                    and not pattern.search(w.norm)
                    and any(q.search(w.norm) for name, q in lx.ALT_TOPIC.items() if name != point)
                    and (
                        _proposal_context(w) is not None
                        and not lx.PROPOSAL_SECTION.search(w.section)
                    )
                ):
                    break  # the next sentence proposes another alternative
                used.append(w)
                t = _trade_off(point, w, topic.end() if w is s else 0)
                if t:
                    found = (w, t)
                    break
            if found is None:
                continue
            if not any(
                has_predicate(u.words)
                or _is_imperative(u)
                or (u.label and has_predicate(tokens(u.label)))
                for u in used
            ) and not (s.label and tokens(s.label)[:1] and tokens(s.label)[0] in lx.IMPERATIVES):
                continue
            w, t = found
            ctx = context if isinstance(context, str) else f"proposed ({_quote(context)})"
            ids = tuple(sorted({s.index, w.index}))
            yield _Hit(point, ids, f"{_quote(topic)} {ctx}, with a trade-off: {_quote(t)}")


# ---------------------------------------------------------------------------- patterns
_CONNECTOR = re.compile(r"^[\s,;/()+-]*(?:(?:and|or|plus|as well as|vs|versus)\b)?[\s,;/()+-]*$")


@dataclass(frozen=True, slots=True)
class _Group:
    start: int
    end: int
    points: frozenset[str]


def _pattern_groups(text: str) -> list[_Group]:
    """Pattern mentions grouped: neighbours joined only by 'and', 'or' or a comma share a group,
    and so do repeated mentions of one pattern ("cost-based optimisation depends on statistics")."""
    spans = sorted(
        (m.start(), m.end(), point)
        for point, q in lx.PATTERN_TOPIC.items()
        for m in q.finditer(text)
    )
    groups: list[list[tuple[int, int, str]]] = []
    for span in spans:
        if groups:
            last = groups[-1]
            between = text[max(e for _, e, _ in last) : span[0]]
            if (
                span[0] < max(e for _, e, _ in last)
                or _CONNECTOR.match(between)
                or span[2] in {p for *_, p in last}
            ):
                last.append(span)
                continue
        groups.append([span])
    return [_Group(g[0][0], max(e for _, e, _ in g), frozenset(p for *_, p in g)) for g in groups]


_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    *lx.ISSUE_TOPIC.items(),
    *lx.ALT_TOPIC.items(),
    *lx.PATTERN_TOPIC.items(),
    ("issue.slow_not_trino", lx.SLOW_CAUSE),
)


def _concepts(text: str) -> tuple[int, list[tuple[int, int]], frozenset[str]]:
    """How many distinct concepts a text names, the regions naming them, and their words.

    Overlapping mentions merge into one region; regions that name the same point ("exit",
    "DR", "leaving" are all the exit plan) count as one concept.
    """
    raw: list[tuple[int, int, str]] = []
    words: set[str] = set()
    for point, q in _FAMILIES:
        for m in q.finditer(text):
            raw.append((m.start(), m.end(), point))
            words.update(tokens(m.group(0)))
    regions: list[tuple[int, int, set[str]]] = []
    for start, end, point in sorted(raw):
        if regions and start <= regions[-1][1]:
            last = regions[-1]
            regions[-1] = (last[0], max(end, last[1]), last[2] | {point})
        else:
            regions.append((start, end, {point}))
    components: list[set[str]] = []
    for *_, pts in regions:
        joined = [c for c in components if c & pts]
        merged = set(pts).union(*joined)
        components = [c for c in components if not (c & pts)] + [merged]
    return len(components), [(a, b) for a, b, _ in regions], frozenset(words)


#: Nouns that ride along with rubric keywords ("cost projection", "exit plan", "ML story").
_KEYWORD_NOUNS = frozenset(
    [
        "projection",
        "projections",
        "plan",
        "plans",
        "story",
        "stories",
        "path",
        "strategy",
        "strategies",
        "loss",
        "estimate",
        "estimates",
        "tuning",
        "moving",
        "workloads",
        "workload",
        "views",
        "view",
        "training",
        "issue",
        "layer",
        "gap",
        "gaps",
    ]
)


def _keyword_dense(s: Sentence) -> bool:
    """Three or more concepts and fewer words saying something about them: stuffing, not a claim."""
    n, regions, _ = _concepts(s.norm)
    if n < 3:
        return False
    outside = s.norm
    for start, end in reversed(regions):
        outside = outside[:start] + " " + outside[end:]
    return len(explanatory(tokens(outside), _KEYWORD_NOUNS)) < n


def _pattern_words(text: str) -> frozenset[str]:
    return frozenset(
        t for q in lx.PATTERN_TOPIC.values() for m in q.finditer(text) for t in tokens(m.group(0))
    )


def _denied(kind: TextKind, norm: str, m: re.Match[str]) -> bool:
    before, after = norm[: m.start()], norm[m.end() :]
    denied = bool(
        lx.DENIAL_BEFORE.search(before)
        or (lx.DENIAL_NOT_A.search(before) and lx.DENIAL_NOUN_AFTER.search(after))
        or lx.DENIAL_AFTER.search(after)
    )
    if not denied:
        return False
    # In a review, "X is not the axis here, since both engines are OLAP" still reasons with X.
    return kind == "postmortem" or not lx.EXPLAINED.search(after)


def _looks_like_action(s: Sentence) -> bool:
    """An action item, or one the text declines: either way not an argument about a pattern."""
    return _action_context(s) and (
        _action_items_of(s) != [] or bool(lx.ACTION_REFUSED.search(s.norm))
    )


def _patterns(doc: _Doc, kind: TextKind) -> Iterator[_Hit]:
    for s in doc.prose():
        if kind == "postmortem" and _looks_like_action(s):
            continue
        if _keyword_dense(s) or lx.CONCEPTS_DISMISSED.search(s.norm):
            continue
        full = s.norm  # holds the sentence's own lead-in label, not one inherited from its block
        own_label_end = len(full) - len(s.body) if s.body and full.endswith(s.body) else 0
        groups = _pattern_groups(full)
        for gi, group in enumerate(groups):
            start = 0 if gi == 0 else group.start
            end = groups[gi + 1].start if gi + 1 < len(groups) else len(full)
            seg = full[start:end]
            if group.start < own_label_end and len(groups) == 1:
                seg = s.body  # "Federation: one query over many sources, ..." - the body explains
            seg_tokens = tokens(seg)
            why_words = explanatory(seg_tokens, _pattern_words(seg))
            if not (has_predicate(seg_tokens) or _is_imperative(s)) or len(why_words) < 2:
                continue
            for point in sorted(group.points):
                matches = list(lx.PATTERN_TOPIC[point].finditer(full))
                if any(_denied(kind, full, m) for m in matches):
                    continue
                first = next(m for m in matches if group.start <= m.start() < group.end)
                if lx.ALT_REJECTED.search(clause_around(full, first.start(), first.end())):
                    continue
                if point == "pattern.testing" and not lx.TEST_RELATION.search(s.norm):
                    continue
                yield _Hit(
                    point,
                    (s.index,),
                    f"{_quote(first)} used in a claim ({', '.join(why_words[:4])})",
                )


# ------------------------------------------------------------------------------- tone
_SENTENCE_IN_HEADING = re.compile(r"\w[.!?]\s+\S")


def _opens_positive(doc: _Doc) -> Iterator[_Hit]:
    opening: list[Sentence] = []
    for s in doc.sentences:
        if s.is_heading and not opening and _SENTENCE_IN_HEADING.search(s.text):
            # "Solid RFC, thanks. Notes:" - a lead-in line that opens with a sentence of its own.
            opening.append(s)
            continue
        if s.is_heading:
            if not opening and re.search(
                r"gets? right|what works|strengths?|what is good|credit", s.norm
            ):
                nxt = next(
                    (x for x in doc.sentences if x.index > s.index and not x.is_heading), None
                )
                if nxt is not None:
                    yield _Hit(
                        "tone.opens_positive",
                        (s.index, nxt.index),
                        f"opens with a section on what the design gets right ('{s.text}')",
                    )
                    return
            continue
        if len(s.words) < 2:
            continue
        opening.append(s)
        if len(opening) == 2:
            break
    if any(lx.SARCASM.search(s.norm) or lx.GATEKEEPING.search(s.norm) for s in opening):
        return  # "Ship it? Absolutely not." credits nothing
    for s in opening:
        for m in lx.POSITIVE_OPENING.finditer(s.norm):
            if m.group(0) == "like" and not re.search(r"\b(?:i|we) (?:\w+ )?like\b(?! to)", s.norm):
                continue
            if re.search(r"\b(?:not|no|never|hardly)\b", clause_around(s.norm, m.start(), m.end())):
                continue
            yield _Hit(
                "tone.opens_positive", (s.index,), f"the opening credits the design: {_quote(m)}"
            )
            return


def _proposes(doc: _Doc) -> Iterator[_Hit]:
    for s in doc.prose():
        if lx.SARCASM.search(s.norm):
            continue
        unquoted = re.sub(r'"[^"]*"', " ", s.norm)
        m = lx.PROPOSAL.search(unquoted)
        if m and not negated_before(unquoted, m.start(), 2) and not _is_list(unquoted):
            yield _Hit("tone.proposes", (s.index,), f"proposes a way forward: {_quote(m)}")
        elif _is_imperative(s) and not lx.GATEKEEPING.search(s.norm):
            yield _Hit(
                "tone.proposes", (s.index,), f"suggests a next step ('{_first_word(s)} ...')"
            )
        elif (
            ((s.label and _PROPOSAL_LABEL.search(s.label)) or lx.PROPOSAL_SECTION.search(s.section))
            and has_predicate(tokens(s.body))
            and not _is_list(s.body)
            and len(explanatory(tokens(s.body))) >= 2
            and not lx.GATEKEEPING.search(s.norm)
        ):
            yield _Hit("tone.proposes", (s.index,), f"proposes under '{s.label or s.section}'")


def _gatekeeping(doc: _Doc) -> Iterator[_Hit]:
    for s in doc.prose():
        m = lx.GATEKEEPING.search(s.norm)
        if m:
            yield _Hit(
                "tone.gatekeeping",
                (s.index,),
                f"forbids or talks down instead of proposing: {_quote(m)}",
            )


def _is_blaming(s: Sentence) -> re.Match[str] | None:
    m = lx.BLAMING.search(s.norm)
    if m:
        return m
    return lx.PERSON_FAULT.search(s.text)


def _blame(doc: _Doc) -> Iterator[_Hit]:
    for s in doc.sentences:
        if s.kind == "table_header":
            continue
        blame = _is_blaming(s)
        if blame:
            yield _Hit("tone.blaming", (s.index,), f"faults a person or team: {_quote(blame)}")
            continue
        stated = lx.BLAMELESS_STATED.search(s.norm)
        if stated and len(s.words) >= 3:
            yield _Hit(
                "tone.blameless", (s.index,), f"states a blameless framing: {_quote(stated)}"
            )
            continue
        if s.is_heading:
            continue
        gap = lx.SYSTEM_GAP.search(s.norm)
        if gap:
            yield _Hit(
                "tone.blameless",
                (s.index,),
                f"frames the cause as a gap in the system or process: {_quote(gap)}",
            )


# -------------------------------------------------------------------------- postmortem
def _action_context(s: Sentence) -> bool:
    if s.is_heading:
        return False
    if lx.ACTION_SECTION.search(s.section) or (s.label and lx.ACTION_SECTION.search(s.label)):
        return True
    return bool(
        re.search(
            r"\bwe will (?:add|create|set up|introduce|build|write|page|alert|automate|require)\b",
            s.norm,
        )
    )


_ACTION_KEYWORDS = frozenset(
    {"test", "tests", "alert", "alerts", "dbt", "check", "checks", "retention", "monitoring"}
)


def _action_items_of(s: Sentence) -> list[str]:
    """The concrete action items a sentence states (normalised), possibly several."""
    raw = s.text
    if s.kind == "table_row":
        cells = [c.strip() for c in raw.split("|")]
        raw = max(cells, key=lambda c: len(c.split())) if cells else raw
    elif s.label and lx.ACTION_SECTION.search(s.label):
        raw = re.sub(r"^[^:.]{0,40}[:.]\s*", "", raw, count=1)
    items: list[str] = []
    for part_raw in re.split(r";\s+|(?<=[a-z0-9)])\.\s+(?=[a-z])", raw):
        part = lx.TICKET.sub(" ", part_raw)
        norm = normalise(part).strip(" .,:-()")
        norm = re.sub(r"^(?:\[ ?\]|\d+[.)]|[a-z]\))\s*", "", norm)
        words = tokens(norm)
        if len(words) < 3 or lx.VAGUE_ACTION.search(norm) or lx.ACTION_REFUSED.search(norm):
            continue
        starts_with_verb = words[0] in lx.ACTION_VERBS or words[0] in BASE_VERBS
        future = re.search(r"\b(?:will|to be|must|should) \w+", norm) is not None
        named = bool(lx.TICKET.search(part_raw)) or bool(
            lx.TEST_NOUN.search(norm) or lx.ALERT_ACTION.search(norm)
        )
        if not (starts_with_verb or future or named):
            continue
        if len(explanatory(words[1:], _ACTION_KEYWORDS)) < 2:
            continue
        items.append(norm)
    return items


def _actions(doc: _Doc) -> Iterator[_Hit]:
    for s in doc.sentences:
        if not _action_context(s):
            continue
        if lx.ACTION_REFUSED.search(s.norm) and not _action_items_of(s):
            continue
        for item in _action_items_of(s):
            yield _Hit(
                "postmortem.action_items", (s.index,), f"a concrete action item: '{item[:60]}'"
            )
            alert = lx.ALERT_ACTION.search(item)
            test_kind = lx.TEST_ACTION.search(item)
            test_noun = lx.TEST_NOUN.search(item)
            if (
                test_kind
                and test_noun
                and not lx.NOT_DATA_TEST.search(item)
                and (alert is None or test_noun.start() < alert.start())
            ):
                yield _Hit(
                    "action.new_test",
                    (s.index,),
                    f"the action adds a data test: {_quote(test_kind)} {_quote(test_noun)}",
                )
            if alert:
                yield _Hit(
                    "action.new_alert", (s.index,), f"the action adds an alert: {_quote(alert)}"
                )


# ------------------------------------------------------------------------------ judge
def _merge(hits: Iterable[_Hit], doc: _Doc, allowed: frozenset[str]) -> tuple[Finding, ...]:
    by_point: dict[str, list[_Hit]] = {}
    for h in hits:
        if h.point in allowed:
            by_point.setdefault(h.point, []).append(h)
    findings: list[Finding] = []
    for point in _ORDER:
        group = by_point.get(point)
        if not group:
            continue
        ids: list[int] = []
        for h in group:
            for i in h.sentences:
                if i not in ids:
                    ids.append(i)
        shown = sorted(ids[:_MAX_EVIDENCE])
        more = f" (and {len(group) - 1} more)" if len(group) > 1 else ""
        findings.append(
            Finding(point, tuple(doc.sentences[i].text for i in shown), group[0].why + more)
        )
    return tuple(findings)


class OfflineJudge:
    """The default judge: rules over sentences; deterministic, pure, no network."""

    @property
    def name(self) -> str:
        return "offline"

    def judge(self, kind: TextKind, text: str) -> TextVerdict:
        doc = _Doc(text)
        if kind == "design_review":
            hits: Iterable[_Hit] = (
                *_issues(doc),
                *_alternatives(doc),
                *_patterns(doc, kind),
                *_opens_positive(doc),
                *_proposes(doc),
                *_gatekeeping(doc),
            )
            allowed = DESIGN_REVIEW_POINTS
        elif kind == "postmortem":
            hits = (*_actions(doc), *_blame(doc), *_patterns(doc, kind))
            allowed = POSTMORTEM_POINTS
        else:  # pragma: no cover - TextKind is a closed Literal; callers validate
            raise ValueError(f"unknown text kind {kind!r}: use 'postmortem' or 'design_review'")
        found = [h for h in hits if h.point in allowed]
        per_point: dict[str, int] = {}
        for h in found:
            per_point[h.point] = per_point.get(h.point, 0) + 1
        return TextVerdict(
            kind=kind,
            judge=self.name,
            findings=_merge(found, doc, allowed),
            confidence=margin_confidence(allowed, per_point, text),
        )


def judge_sentences(text: str) -> Sequence[Sentence]:
    """The sentences the judge sees, for tools that show or number them (CLI, LLM prompt)."""
    return segment(text)
