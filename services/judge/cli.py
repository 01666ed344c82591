"""``proctor judge FILE.md --kind ...``: the verdict per rubric item, with the sentences used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from services.core.textjudge import TextKind, TextVerdict
from services.errors import ConfigError
from services.judge.configured import configured_judge
from services.judge.criteria import (
    EXPECTED_PATTERNS,
    FAULT_LAYERS,
    CriterionResult,
    evaluate_verdict,
    total_pct,
)
from services.settings import load_settings

_STATE_STYLE = {"met": "green", "partial": "yellow", "failed": "red", "pending": "dim"}


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.UsageError(
            f"{path} is not UTF-8 text; save it as UTF-8 markdown and try again"
        ) from exc
    if not text.strip():
        raise click.UsageError(f"{path} is empty: there is nothing to judge")
    return text


def _layer(kind: TextKind, fault_layer: str | None, fault_kind: str | None) -> str | None:
    if kind == "design_review" and (fault_layer or fault_kind):
        raise click.UsageError("--fault-layer and --fault-kind apply to postmortems only")
    if fault_kind is not None:
        implied = FAULT_LAYERS[fault_kind]
        if fault_layer is not None and fault_layer != implied:
            raise click.UsageError(
                f"--fault-kind {fault_kind} is a fault of layer {implied}, not {fault_layer}"
            )
        return implied
    return fault_layer


def verdict_json(
    path: Path, verdict: TextVerdict, fault_layer: str | None, results: tuple[CriterionResult, ...]
) -> dict[str, Any]:
    """The ``--json`` document (stable keys; tests and scripts rely on them)."""
    return {
        "file": str(path),
        "kind": verdict.kind,
        "judge": verdict.judge,
        "fallback_reason": verdict.fallback_reason or None,
        "confidence": dict(verdict.confidence),
        "review_below": verdict.review_below,
        "fault_layer": fault_layer,
        "criteria": [
            {
                "criterion": r.criterion,
                "state": r.state,
                "points": list(r.points),
                "reason": r.reason,
            }
            for r in results
        ],
        "text_total_pct": round(total_pct(results), 1),
        "findings": [
            {"point": f.point, "sentences": list(f.sentences), "why": f.why}
            for f in verdict.findings
        ],
    }


def _print(
    console: Console, path: Path, verdict: TextVerdict, results: tuple[CriterionResult, ...]
) -> None:
    console.print(f"[bold]{path}[/bold]  kind={verdict.kind}  judge={verdict.judge}")
    if verdict.fallback_reason:
        console.print(f"[yellow]fallback:[/yellow] {verdict.fallback_reason}")
    table = Table(title="Rubric items", show_lines=True)
    table.add_column("criterion")
    table.add_column("state")
    table.add_column("points")
    table.add_column("reason")
    for r in results:
        style = _STATE_STYLE.get(r.state, "")
        table.add_row(
            r.criterion, f"[{style}]{r.state}[/{style}]", "\n".join(r.points) or "-", r.reason
        )
    console.print(table)
    if not verdict.findings:
        console.print("No point found: no sentence made a claim the rubric counts.")
        return
    evidence = Table(title="Findings and the sentences they rest on", show_lines=True)
    evidence.add_column("point")
    evidence.add_column("why")
    evidence.add_column("sentences")
    for f in verdict.findings:
        evidence.add_row(f.point, f.why, "\n".join(f"\u2022 {s}" for s in f.sentences))
    console.print(evidence)


@click.command("judge")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(["design_review", "postmortem"]),
    required=True,
    help="What the text is.",
)
@click.option(
    "--fault-layer",
    type=click.Choice(sorted(EXPECTED_PATTERNS)),
    default=None,
    help="Postmortems: the injected fault's layer, which decides the pattern p2.pattern_cited expects.",
)
@click.option(
    "--fault-kind",
    type=click.Choice(sorted(FAULT_LAYERS)),
    default=None,
    help="Postmortems: the injected fault's kind (implies its layer).",
)
@click.option(
    "--offline", is_flag=True, help="Use the offline judge even if PROCTOR_JUDGE_URL is set."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the verdict as JSON instead of tables."
)
def judge(
    file: Path,
    kind: str,
    fault_layer: str | None,
    fault_kind: str | None,
    offline: bool,
    as_json: bool,
) -> None:
    """Judge a postmortem or design review and show, per rubric item, the sentences it counted.

    The offline judge is the default. With PROCTOR_JUDGE_URL and PROCTOR_JUDGE_MODEL set
    (and PROCTOR_JUDGE_API_KEY if the service needs one), a language model over an
    OpenAI-compatible API judges instead, falling back to the offline judge on any error.
    """
    text_kind: TextKind = "design_review" if kind == "design_review" else "postmortem"
    layer = _layer(text_kind, fault_layer, fault_kind)
    text = _read(file)
    try:
        judge_impl = configured_judge(load_settings().judge, offline=offline)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    verdict = judge_impl.judge(text_kind, text)
    results = evaluate_verdict(verdict, layer)
    if as_json:
        click.echo(json.dumps(verdict_json(file, verdict, layer, results), indent=2))
        return
    _print(Console(), file, verdict, results)
