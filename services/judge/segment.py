"""Markdown to sentences, keeping the structure that carries meaning in reviews.

Reviews and postmortems are markdown: headings name sections ("Action items",
"Alternatives"), bullets are claims of their own, table rows compare options, and a
bold or ``Label:`` lead-in names what a paragraph is about. Each sentence keeps its
section, its block and its lead-in label, so a rule can ask "is this an action item?"
or "what is this bullet about?" without re-reading the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.judge.language import normalise, tokens

BlockKind = str  # "heading" | "bullet" | "paragraph" | "table_row" | "table_header"


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence (or heading, or table row) of a text, with its place in the document."""

    index: int
    text: str
    norm: str
    block: int
    kind: BlockKind
    section: str
    label: str
    body: str
    position: int

    @property
    def is_heading(self) -> bool:
        return self.kind in ("heading", "table_header")

    @property
    def is_question(self) -> bool:
        return self.text.rstrip().endswith("?")

    @property
    def words(self) -> list[str]:
        return tokens(self.norm)


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BOLD_LINE = re.compile(r"^\s*(?:\*\*|__)(.+?)(?:\*\*|__)\s*[:.]?\s*$")
_BULLET = re.compile(
    r"^\s*(?:[-*+\u2022]|\d{1,2}[.)]|[a-zA-Z][.)](?=\s)|[A-Z]\d{1,2}[.)])\s+(?:\[[ xX]\]\s+)?"
)
_TABLE = re.compile(r"^\s*\|")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LEAD_LABEL = re.compile(
    r"^\s*(?:\*\*|__)?([A-Za-z0-9][\w .'/&()-]{0,40}?)(?:\*\*|__)?\s*[:.]\s+(?=\S)"
)
_BOLD_LEAD = re.compile(
    r"^\s*(?:\*\*|__)([^*_]{1,60}?)(?:[:.](?:\*\*|__)|(?:\*\*|__)[:.])\s+(?=\S)"
)
_ABBREV = re.compile(
    r"(?:\b(?:e\.g|i\.e|vs|etc|approx|cf|al|no|dr|mr|ms|fig|sec|incl|min|max)\.|\b[A-Z]\.)$",
    re.IGNORECASE,
)


@dataclass(slots=True)
class _Block:
    kind: BlockKind
    lines: list[str]
    cells: list[str] | None = None


def _blocks(text: str) -> list[_Block]:
    out: list[_Block] = []
    cur: _Block | None = None
    in_fence = False
    table_header_seen = False

    def close() -> None:
        nonlocal cur
        if cur is not None and any(x.strip() for x in cur.lines):
            out.append(cur)
        cur = None

    for raw in text.splitlines():
        if _FENCE.match(raw):
            close()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        line = raw.rstrip()
        if not line.strip():
            close()
            table_header_seen = False
            continue
        if _TABLE.match(line):
            close()
            if _TABLE_SEP.match(line):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            kind = "table_row" if table_header_seen else "table_header"
            table_header_seen = True
            out.append(_Block(kind, [" | ".join(c for c in cells if c)], cells))
            continue
        table_header_seen = False
        m = _HEADING.match(line)
        if m:
            close()
            out.append(_Block("heading", [m.group(1)]))
            continue
        m = _BOLD_LINE.match(line)
        if m and len(m.group(1).split()) <= 10:
            close()
            out.append(_Block("heading", [m.group(1)]))
            continue
        m = _BULLET.match(line)
        if m:
            close()
            cur = _Block("bullet", [line[m.end() :].strip()])
            continue
        if cur is None:
            cur = _Block("paragraph", [line.strip()])
        else:
            cur.lines.append(line.strip())
    close()
    return out


def _is_pseudo_heading(block: _Block, next_kind: str) -> bool:
    """A one-line paragraph that names a section: 'Action items:', 'What happened', 'Hi Sam,'."""
    if block.kind != "paragraph" or len(block.lines) != 1:
        return False
    line = block.lines[0].strip()
    words = line.split()
    if not words or len(words) > 7:
        return False
    if line.endswith(":") or not line.endswith((".", "?", "!")):
        return True
    return _is_lead_label(line) and (
        next_kind in ("bullet", "table_header", "table_row") or _is_section_word(line)
    )


_NOT_TITLE = re.compile(r"\b(is|are|was|were|it|this|that|me|you|we|i)\b", re.IGNORECASE)
_SECTION_WORDS = frozenset(
    [
        "fix",
        "next",
        "resolution",
        "impact",
        "summary",
        "timeline",
        "diagnosis",
        "detection",
        "triage",
        "investigation",
        "cause",
        "root",
        "follow",
        "action",
        "actions",
        "patterns",
        "issues",
        "issue",
        "alternatives",
        "lessons",
        "background",
        "context",
        "status",
        "concerns",
        "gaps",
        "problems",
        "proposal",
        "recommendation",
        "suggestions",
        "analysis",
        "outcome",
        "symptoms",
    ]
)


def _is_section_word(piece: str) -> bool:
    words = re.findall(r"[a-z]+", piece.lower())
    return bool(words) and words[0] in _SECTION_WORDS


_NUMBERED_TITLE = re.compile(
    r"^(?:issue|concern|point|gap|question|problem|note|comment|step|option|alternative|finding)s? "
    r"(?:\d+|one|two|three|four|five|six|[a-z])\.$",
    re.IGNORECASE,
)


def _is_lead_label(piece: str) -> bool:
    """'Root cause.', 'Issue one.', '**Fix.**': a short title that names what follows."""
    raw = piece.strip().strip("*_ ")
    words = raw.split()
    if not (1 <= len(words) <= 3 and raw.endswith((".", ":")) and raw[0].isupper()) or "," in raw:
        return False
    if _NOT_TITLE.search(raw):
        return False
    return _is_section_word(raw) or bool(_NUMBERED_TITLE.match(raw))


def split_sentences(paragraph: str) -> list[str]:
    """Split prose into sentences, leaving abbreviations, decimals and versions intact."""
    text = re.sub(r"\s+", " ", paragraph).strip()
    if not text:
        return []
    parts: list[str] = []
    start = 0
    for m in re.finditer(r"[.!?]+[\"')\]*]*\s+(?=[\"'(\[*`_]*[A-Z0-9#§])", text):
        head = text[start : m.start() + 1]
        if _ABBREV.search(head.strip()):
            continue
        parts.append(text[start : m.end()].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _label(text: str) -> tuple[str, str]:
    """Split a lead-in label ('Root cause:', '**Fix.**', 'ML:') from the body."""
    m = _BOLD_LEAD.match(text) or _LEAD_LABEL.match(text)
    if m and len(m.group(1).split()) <= 5:
        return m.group(1).strip(), text[m.end() :].strip()
    return "", text.strip()


def segment(text: str) -> tuple[Sentence, ...]:
    """The sentences of a markdown text, in order, each with its section and label."""
    sentences: list[Sentence] = []
    section = ""
    real_section = ""  # from markdown or bold headings; a one-line pseudo-heading is scoped
    pseudo_listed = False
    blocks = _blocks(text)
    table_header = ""
    for block_no, block in enumerate(blocks):
        kind = block.kind
        if kind == "table_header":
            table_header = normalise(" ".join(block.cells or block.lines))
        elif kind != "table_row":
            table_header = ""
        next_kind = blocks[block_no + 1].kind if block_no + 1 < len(blocks) else ""
        pseudo = kind == "paragraph" and _is_pseudo_heading(block, next_kind)
        if pseudo:
            kind = "heading"
        elif kind in ("bullet", "table_row", "table_header"):
            pseudo_listed = pseudo_listed or section != real_section
        elif kind == "paragraph" and pseudo_listed:
            # "Alternatives:" introduced a list; the paragraph after the list is not part of it.
            section, pseudo_listed = real_section, False
        if kind in ("heading", "table_header"):
            raw = re.sub(r"(\*\*|__|`)", "", block.lines[0]).strip().rstrip(":").strip()
            if kind == "heading" and (block_no > 0 or _is_section_word(raw)):
                # The document's title (a first markdown heading) names the text, not a section.
                section = normalise(raw)
                pseudo_listed = False
                if not pseudo:
                    real_section = section
            sentences.append(
                Sentence(len(sentences), raw, normalise(raw), block_no, kind, section, "", raw, 0)
            )
            continue
        joined = " ".join(block.lines)
        pieces = [joined] if kind == "table_row" else split_sentences(joined)
        block_label = ""
        if len(pieces) > 1 and _is_lead_label(pieces[0]):
            # "Root cause. The DAG computed ..." - the first words name the paragraph.
            raw = re.sub(r"(\*\*|__|`)", "", pieces.pop(0)).strip().rstrip(".:").strip()
            block_label = normalise(raw)
            sentences.append(
                Sentence(len(sentences), raw, block_label, block_no, "heading", section, "", raw, 0)
            )
        for pos, piece in enumerate(pieces):
            label, body = _label(piece) if kind != "table_row" else (table_header, piece)
            if pos == 0 and not block_label:
                block_label = normalise(label)
                if kind == "paragraph" and block_label and next_kind == "bullet":
                    # "Follow-ups: we talked about ... \n- Update the template" - the list is the follow-ups.
                    section, pseudo_listed = block_label, False
            shown = re.sub(r"(\*\*|__|`)", "", piece).strip()
            sentences.append(
                Sentence(
                    index=len(sentences),
                    text=shown,
                    norm=normalise(piece),
                    block=block_no,
                    kind=kind,
                    section=section,
                    label=(label if kind == "table_row" else normalise(label)) or block_label,
                    body=normalise(body),
                    position=pos,
                )
            )
    return tuple(sentences)
