"""Word-level helpers of the offline judge: normalisation, tokens, predicates, negation.

Classical and explainable on purpose: a point is made by a sentence that *claims*
something, and the cheapest reliable signal of a claim in review prose is a predicate
(an auxiliary, a modal or an unambiguous verb form) plus words that explain, beyond the
concept's own name. Lists of pattern names have neither.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CONTRACTIONS: tuple[tuple[str, str], ...] = (
    (r"\bwon't\b", "will not"),
    (r"\bcan't\b", "can not"),
    (r"\bcannot\b", "can not"),
    (r"\bshan't\b", "shall not"),
    (r"\blet's\b", "let us"),
    (r"\b(it|that|what|there|here|he|she|who|this)'s\b", r"\1 is"),
    (r"n't\b", " not"),
    (r"'re\b", " are"),
    (r"'ll\b", " will"),
    (r"'ve\b", " have"),
    (r"'d\b", " would"),
    (r"\bi'm\b", "i am"),
    (r"'s\b", ""),
    (r"s'(?=\s)", "s"),
)

_MARKDOWN = re.compile(r"\*\*|__|`|~~|\[\s?[xX ]?\s?\]|^#+\s*|^>\s*")


def normalise(text: str) -> str:
    """Lower-case, plain-ASCII-punctuation form that the concept patterns are written for.

    Contractions are expanded (``doesn't`` -> ``does not``) so negation has one form,
    hyphens and slashes between words become spaces (``cost-based`` -> ``cost based``,
    ``DR/exit`` -> ``dr or exit``), and markdown emphasis disappears.
    """
    s = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    s = s.replace("\u2014", " - ").replace("\u2013", "-").replace("\u2192", " -> ").replace("\u00a0", " ")
    s = _MARKDOWN.sub("", s.lower())
    for pattern, repl in _CONTRACTIONS:
        s = re.sub(pattern, repl, s)
    s = re.sub(r"(?<=[a-z0-9])-(?=[a-z0-9])", " ", s)
    s = re.sub(r"(?<=[a-z])/(?=[a-z])", " or ", s)
    s = s.replace("&", " and ").replace("+", " plus ")
    return re.sub(r"\s+", " ", s).strip()


_TOKEN = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")


def tokens(norm: str) -> list[str]:
    return _TOKEN.findall(norm)


STOPWORDS: frozenset[str] = frozenset(
    ["a", "an", "the", "and", "or", "but", "if", "then", "else", "so", "as", "of", "to", "in", "on", "at", "by", "for", "with", "from", "into", "onto", "over", "under", "about", "than", "that", "this", "these", "those", "there", "here", "it", "its", "itself", "they", "them", "their", "we", "us", "our", "you", "your", "i", "me", "my", "he", "she", "his", "her", "him", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "done", "have", "has", "had", "will", "would", "can", "could", "should", "shall", "may", "might", "must", "not", "no", "nor", "yes", "all", "any", "each", "every", "some", "such", "own", "same", "other", "another", "more", "most", "less", "least", "very", "also", "just", "only", "even", "still", "too", "quite", "rather", "really", "both", "either", "neither", "which", "who", "whom", "whose", "what", "when", "where", "why", "how", "while", "because", "since", "until", "unless", "although", "though", "whether", "up", "down", "out", "off", "again", "further", "once", "one", "two", "three", "four", "five", "first", "second", "third", "next", "last", "new", "old", "per", "via", "vs", "versus", "etc", "eg", "ie", "let", "get", "got", "make", "made", "much", "many", "few", "lot", "lots", "thing", "things", "way", "ways", "well"]
)

#: Words that talk about the review or the rubric instead of the design.
META: frozenset[str] = frozenset(
    ["pattern", "patterns", "issue", "issues", "alternative", "alternatives", "trade", "tradeoff", "tradeoffs", "off", "offs", "keyword", "keywords", "important", "importance", "relevant", "relevance", "apply", "applies", "applicable", "cited", "cite", "cites", "citing", "rubric", "senior", "staff", "engineer", "engineers", "constructive", "kind", "review", "reviews", "reviewer", "considers", "consider", "considered", "consideration", "key", "also", "another", "overall", "mentioned", "mention", "list", "listed", "include", "includes", "included", "yes", "note", "notes", "matter", "matters", "mattered", "crucial", "essential", "critical", "significant", "useful", "interesting", "thing", "things", "worth"]
)

_AUX: frozenset[str] = frozenset(
    ["is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "have", "has", "had", "will", "would", "can", "could", "should", "shall", "may", "might", "must", "need", "needs", "needed"]
)

# Verbs whose base form is rarely a noun in this domain; all their inflections count.
_VERB_BASES: tuple[str, ...] = tuple(
    ["accept", "achieve", "act", "adapt", "add", "address", "adjust", "admit", "adopt", "affect", "afford", "agree", "aim", "allow", "alter", "appear", "apply", "approve", "argue", "arise", "arrange", "arrive", "ask", "assess", "assign", "assume", "attach", "attempt", "attribute", "avoid", "become", "begin", "behave", "believe", "belong", "benefit", "bind", "blame", "block", "borrow", "bother", "break", "bring", "broadcast", "build", "burn", "buy", "calculate", "carry", "catch", "choose", "claim", "clarify", "climb", "collapse", "collect", "combine", "come", "commit", "compact", "compare", "compete", "complain", "complete", "compute", "conclude", "confirm", "confuse", "connect", "consume", "contain", "continue", "contribute", "convert", "convince", "copy", "correct", "cover", "crash", "create", "cut", "deal", "decide", "decline", "decommission", "defend", "define", "delay", "delete", "deliver", "demand", "deny", "depend", "deploy", "derive", "describe", "deserve", "destroy", "detect", "determine", "develop", "differ", "disable", "disagree", "disappear", "discard", "discover", "discuss", "dismiss", "distinguish", "divide", "doubt", "drift", "drive", "drop", "earn", "ease", "eliminate", "emerge", "emphasise", "emphasize", "enable", "encode", "encourage", "enforce", "enjoy", "ensure", "enter", "establish", "estimate", "evaluate", "examine", "exceed", "exclude", "execute", "exist", "expand", "expect", "expire", "explain", "explore", "export", "expose", "extend", "fail", "fall", "fear", "feel", "fetch", "fight", "fill", "find", "finish", "fit", "fix", "focus", "follow", "force", "forget", "freeze", "gain", "generate", "get", "give", "go", "grab", "grant", "grow", "guarantee", "guess", "handle", "happen", "hate", "hear", "help", "hide", "hit", "hold", "hope", "hurt", "identify", "ignore", "imagine", "implement", "imply", "import", "improve", "include", "increase", "indicate", "inform", "insist", "install", "intend", "introduce", "invest", "involve", "isolate", "keep", "kill", "know", "lack", "launch", "lead", "learn", "leave", "lend", "let", "like", "limit", "link", "listen", "live", "locate", "look", "lose", "love", "maintain", "make", "manage", "matter", "mean", "measure", "meet", "mention", "merge", "migrate", "mind", "miss", "mix", "modify", "monitor", "move", "multiply", "notice", "obtain", "occur", "offer", "omit", "open", "operate", "optimise", "optimize", "organise", "organize", "own", "pass", "pay", "perform", "permit", "pick", "pin", "precompute", "predict", "prefer", "prepare", "present", "preserve", "prevent", "proceed", "produce", "profile", "promise", "protect", "prove", "provide", "prune", "publish", "pull", "purchase", "push", "put", "qualify", "raise", "reach", "react", "read", "realise", "realize", "rebuild", "receive", "recognise", "recognize", "recompute", "recommend", "recount", "reduce", "refer", "reflect", "refresh", "refuse", "regret", "reject", "relate", "release", "rely", "remain", "remember", "remind", "remove", "rename", "render", "repair", "repeat", "replace", "replay", "reply", "represent", "request", "require", "rerun", "rescue", "resolve", "respect", "respond", "restore", "restrict", "retain", "retry", "reuse", "reveal", "rewrite", "rise", "rotate", "save", "say", "see", "seek", "seem", "select", "sell", "send", "separate", "serve", "set", "settle", "shape", "share", "shift", "ship", "show", "shrink", "shuffle", "shut", "simplify", "skip", "slip", "slow", "solve", "specify", "spend", "split", "spread", "stand", "start", "stay", "stick", "stop", "store", "struggle", "submit", "succeed", "suffer", "suggest", "suit", "supply", "support", "suppose", "surprise", "survive", "suspect", "swap", "switch", "take", "talk", "teach", "tell", "tend", "thank", "think", "throw", "tie", "touch", "trade", "treat", "trigger", "try", "tune", "turn", "understand", "undo", "unify", "update", "upgrade", "use", "validate", "vary", "verify", "visit", "wait", "walk", "want", "warn", "waste", "watch", "wear", "win", "wish", "wonder", "worry", "write"]
)

# Bases that are as often nouns ("a run", "the cost", "root cause"): only their past forms count.
_AMBIGUOUS_BASES: tuple[str, ...] = tuple(
    ["cause", "result", "need", "state", "plan", "test", "cost", "order", "report", "change", "question", "view", "join", "run", "load", "scan", "file", "cache", "query", "point", "note", "design", "review", "concern", "reason", "record", "return", "work", "risk", "rest", "trust", "count", "double", "place", "mark", "form", "sign", "lock", "head", "list", "model", "price", "bill", "charge", "spill", "stream", "batch", "schedule", "target", "track", "value", "page", "alert", "check", "power", "process", "partition", "bucket", "sort"]
)

_IRREGULAR: frozenset[str] = frozenset(
    ["broke", "broken", "bought", "brought", "built", "caught", "chose", "chosen", "came", "did", "done", "drove", "driven", "fell", "felt", "found", "forgot", "forgotten", "gave", "given", "went", "gone", "grew", "grown", "held", "hid", "hidden", "kept", "knew", "known", "led", "left", "lost", "made", "meant", "paid", "put", "read", "ran", "rose", "risen", "said", "saw", "seen", "sent", "showed", "shown", "spent", "stood", "stuck", "took", "taken", "told", "thought", "understood", "won", "wrote", "written", "became", "begun", "began"]
)


def _inflect(base: str) -> set[str]:
    forms = {base}
    if base.endswith("e"):
        forms |= {base + "s", base + "d", base[:-1] + "ing"}
    elif base.endswith(("s", "sh", "ch", "x")):
        forms |= {base + "es", base + "ed", base + "ing"}
    elif base.endswith("y") and base[-2:-1] not in "aeiou":
        forms |= {base[:-1] + "ies", base[:-1] + "ied", base + "ing"}
    else:
        forms |= {base + "s", base + "ed", base + "ing"}
        if re.fullmatch(r"[a-z]*[^aeiou][aeiou][bdgmnprt]", base) and len(base) <= 5:
            forms |= {base + base[-1] + "ed", base + base[-1] + "ing"}
    return forms


def _past(base: str) -> set[str]:
    return {f for f in _inflect(base) if f.endswith("ed")}


# "-ing" forms are left out: a gerund or participle alone does not make a clause a claim.
VERB_FORMS: frozenset[str] = frozenset(
    {f for b in _VERB_BASES for f in _inflect(b) if not f.endswith("ing")}
    | {f for b in _AMBIGUOUS_BASES for f in _past(b)}
    | _IRREGULAR
    | _AUX
)

# "-ed" words that are adjectives in this domain ("materialized views", "a managed warehouse").
_ED_NOT_VERB: frozenset[str] = frozenset(
    ["speed", "need", "feed", "seed", "bed", "red", "shed", "hundred", "materialized", "materialised", "managed", "curated", "closed", "partitioned", "compacted", "uncompacted", "based", "scoped", "detailed", "advanced", "distributed", "federated", "typed", "shared", "nested", "bucketed", "dedicated", "automated", "metered", "priced", "billed", "formatted", "unrelated", "related", "outdated", "unmerged", "merged", "pinned", "staged", "phased", "structured", "unstructured"]
)


_SUBJECTS = frozenset(
    ["i", "we", "you", "they", "it", "he", "she", "to", "will", "would", "can", "could", "should", "must", "may", "might", "not", "also", "still", "often", "usually", "never", "always"]
)
_AMBIGUOUS_FORMS = frozenset({f for b in _AMBIGUOUS_BASES for f in _inflect(b) if not f.endswith(("ing", "ed"))})


def has_predicate(toks: Sequence[str]) -> bool:
    """Whether a span has a finite verb: an auxiliary, a known verb form or an ``-ed`` form.

    A word that is as often a noun ("join", "cost", "run") counts only after a subject
    pronoun, a modal or a plural noun ("reports join", "we run", "it will cost").
    """
    for i, t in enumerate(toks):
        if t in ("trade", "trades") and toks[i + 1 : i + 2] in (["off"], ["offs"]):
            continue  # "trade-off" is a noun
        if t in VERB_FORMS:
            return True
        if len(t) > 4 and t.endswith("ed") and t not in _ED_NOT_VERB:
            return True
        if t in _AMBIGUOUS_FORMS and i > 0:
            prev = toks[i - 1]
            if prev in _SUBJECTS or (len(prev) > 3 and prev.endswith("s") and prev not in VERB_FORMS and not prev.endswith("ss")):
                return True
    return False


BASE_VERBS: frozenset[str] = frozenset(_VERB_BASES)


def explanatory(toks: Sequence[str], exclude: frozenset[str] = frozenset()) -> list[str]:
    """The words of a span that explain: content words that are not stop, meta or excluded."""
    return [
        t
        for t in toks
        if len(t) >= 3
        and not t.isdigit()
        and t not in STOPWORDS
        and t not in META
        and t not in exclude
    ]


NEGATORS: frozenset[str] = frozenset(
    {"not", "no", "never", "without", "nothing", "neither", "nor", "none", "hardly", "against"}
)

_CLAUSE_BREAK = re.compile(r"[;:()\[\]]|,\s|\s-\s|\s->\s|\b(?:but|because|since|although|though|whereas|however)\b")


def clause_around(norm: str, start: int, end: int) -> str:
    """The clause of ``norm`` that contains the span [start, end)."""
    left = 0
    for m in _CLAUSE_BREAK.finditer(norm, 0, start):
        left = m.end()
    right_m = _CLAUSE_BREAK.search(norm, end)
    right = right_m.start() if right_m else len(norm)
    return norm[left:right]


def negated_before(norm: str, start: int, window: int = 4) -> bool:
    """Whether a negator sits within ``window`` words before ``start``, in the same clause."""
    left = 0
    for m in _CLAUSE_BREAK.finditer(norm, 0, start):
        left = m.end()
    before = tokens(re.sub(r"\bwhy not\b", "why", norm[left:start]))[-window:]  # "why not move ..." proposes
    if any(t in NEGATORS for t in before):
        return True
    tail = " ".join(before)
    return bool(re.search(r"\b(instead of|rather than|forget about|forget)\s*$", tail))
