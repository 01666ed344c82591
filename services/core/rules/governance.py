"""Rules about how things were changed and who may see what: GitOps, kubectl, masking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.core.facts.base import FactSpec
from services.core.facts.keyed import MASKED, SEP, Earliest, EarliestSpec, KeyRule
from services.core.facts.trino import ColumnMasks, ColumnMasksSpec
from services.core.matching import clock, matching_keys
from services.core.model import Outcome
from services.core.rules.base import Params, Query, Rule, met, pending
from services.core.rules.registry import register
from services.core.where import Cond

if TYPE_CHECKING:
    from services.core.rubric import CriterionSpec


class ManualApplyParams(Params):
    """What counts as a manual kubectl apply in the Kubernetes audit log.

    kubectl names itself ``kubectl/<version>`` (``kubectl.exe/<version>`` on Windows) and
    sends a field manager per command: ``kubectl-client-side-apply`` and ``kubectl``
    (``apply --server-side``), and ``kubectl-<command>`` for the other commands that write
    an object a person wrote or edited. A dry run (``apply --dry-run=server``, ``diff``)
    persists nothing and is never a manual apply.
    """

    verbs: tuple[str, ...] = ("create", "update", "patch")
    user_agent_pattern: str = r"^kubectl(\.exe)?/"
    field_managers: tuple[str, ...] = (
        "kubectl-client-side-apply",
        "kubectl",
        "kubectl-create",
        "kubectl-edit",
        "kubectl-patch",
        "kubectl-replace",
        "kubectl-run",
    )
    system_prefixes: tuple[str, ...] = ("system:",)
    max_response_code: int = 399

    def conds(self) -> tuple[Cond, ...]:
        return (
            Cond("verb", "in", self.verbs),
            Cond("user_agent", "matches", self.user_agent_pattern),
            Cond("field_manager", "in", self.field_managers),
            Cond("user", "not_prefix", self.system_prefixes),
            Cond("user", "matches", r"\S"),
            Cond("response_code", "at_most", self.max_response_code),
            Cond("dry_run", "not_equals", True),
        )

    def fact_spec(self, after: str | None) -> EarliestSpec:
        return EarliestSpec("k8s.audit", self.conds(), KeyRule(("namespace",)), after)


def first_manual_apply(
    fact: Earliest, namespaces: tuple[str, ...], close_ms: int
) -> tuple[int, str, str] | None:
    """The earliest manual apply in one of ``namespaces`` up to the close: (ts, event id, ns)."""
    hits = [
        (p[0], p[1], ns) for ns, p in fact.best.items() if ns in namespaces and p[0] <= close_ms
    ]
    return min(hits) if hits else None


def same_commit(a: str, b: str) -> bool:
    """Equal commit ids, or one is an abbreviation (>= 7 hex digits) of the other."""
    if not a or not b:
        return False
    if a == b:
        return True
    short, full = sorted((a, b), key=len)
    return len(short) >= 7 and full.startswith(short)


class NoManualApplyParams(ManualApplyParams):
    pass


@register
class NoManualApply(Rule[NoManualApplyParams]):
    """Failed at the first manual apply in a pipeline namespace; met when the part closes without one."""

    kind = "no_manual_apply"
    params_model = NoManualApplyParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        self._fs = self.p.fact_spec(None)

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._fs,)

    def decide(self, q: Query) -> Outcome:
        if not q.ctx.namespaces:
            return pending("Waiting for pipeline.declared to name the pipeline's namespaces.")
        hit = first_manual_apply(q.fact(self._fs, Earliest), q.ctx.namespaces, q.close_ms)
        if hit is not None:
            ts, eid, ns = hit
            return Outcome(
                "failed",
                f"A person changed namespace {ns} with a manual kubectl apply at {clock(ts)}.",
                (eid,),
                ts,
            )
        return pending("No manual kubectl apply in the pipeline namespaces so far.")

    def on_close(self, q: Query, pending_outcome: Outcome) -> Outcome:
        if not q.ctx.namespaces:
            return super().on_close(q, pending_outcome)
        return met(
            f"No manual kubectl apply in {', '.join(q.ctx.namespaces)} up to the close at {clock(q.close_ms)}.",
            (),
            q.close_ms,
        )


class ArgoDeployedParams(Params):
    phase: str = "Succeeded"
    health: str = "Healthy"


@register
class ArgoDeployed(Rule[ArgoDeployedParams]):
    """Every pipeline namespace got a successful, healthy Argo CD sync that GitOps started.

    "Started by GitOps" means initiated_by automated, or the synced revision is a
    merged commit (gitops.merge).
    """

    kind = "argocd_deployed"
    params_model = ArgoDeployedParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        self._syncs = EarliestSpec(
            "argocd.sync",
            (Cond("phase", "equals", self.p.phase), Cond("health_status", "equals", self.p.health)),
            KeyRule(special="argocd_namespaces"),
        )
        self._merges = EarliestSpec("gitops.merge", (), KeyRule(("commit_sha",)))

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._syncs, self._merges)

    def decide(self, q: Query) -> Outcome:
        nss = q.ctx.namespaces
        if not nss:
            return pending("Waiting for pipeline.declared to name the pipeline's namespaces.")
        close = q.close_ms
        merges = [sha for sha, p in q.fact(self._merges, Earliest).best.items() if p[0] <= close]
        best: dict[str, tuple[int, str]] = {}
        for key, p in q.fact(self._syncs, Earliest).best.items():
            ns, rev, how = key.split(SEP)
            if ns not in nss or p[0] > close:
                continue
            gitops = how == "auto" or any(same_commit(rev, m) for m in merges)
            if gitops and (ns not in best or p < best[ns]):
                best[ns] = p
        missing = [ns for ns in nss if ns not in best]
        if missing:
            return pending(
                f"No successful, healthy GitOps sync yet for namespace(s) {', '.join(missing)}.",
                tuple(p[1] for p in best.values()),
            )
        last = max(best.values())
        return met(
            f"Argo CD synced {', '.join(nss)} (Succeeded, Healthy) from Git, the last at {clock(last[0])}.",
            tuple(sorted({p[1] for p in best.values()})),
            last[0],
        )


class ColumnMaskParams(Params):
    finished_states: tuple[str, ...] = ("FINISHED",)


@register
class ColumnMaskVerified(Rule[ColumnMaskParams]):
    """The PII column is masked, and a user the mask applies to read it in a finished query."""

    kind = "column_mask_verified"
    params_model = ColumnMaskParams

    def __init__(self, spec: CriterionSpec) -> None:
        super().__init__(spec)
        self._masks = ColumnMasksSpec()
        self._reads = EarliestSpec(
            "trino.query",
            (Cond("state", "in", self.p.finished_states),),
            KeyRule(special="columns_by_user"),
        )

    def facts(self) -> tuple[FactSpec, ...]:
        return (self._masks, self._reads)

    def decide(self, q: Query) -> Outcome:
        pii = q.ctx.asset("pii_column")
        if not pii:
            return pending("Waiting for pipeline.declared to name the pii_column.")
        close = q.close_ms
        masks = q.fact(self._masks, ColumnMasks)
        cols = [c for c in matching_keys(masks.first, pii) if masks.first[c][0] <= close]
        if not cols:
            return pending(f"No Trino column mask on {pii} yet.")
        mask = min(masks.first[c] for c in cols)
        users = masks.users(cols, close)
        reads = q.fact(self._reads, Earliest).best
        by_col: dict[str, list[tuple[str, tuple[int, str]]]] = {}
        masked: dict[str, list[tuple[int, str]]] = {}
        for key, p in reads.items():
            col, user = key.split(SEP, 1)
            if user.endswith(SEP + MASKED):
                # Trino masked the column in that query: the mask applied to its user,
                # whatever the rules' user patterns (regexes, groups, first match) say
                masked.setdefault(col, []).append(p)
            else:
                by_col.setdefault(col, []).append((user, p))
        hits = [
            p
            for col in matching_keys(by_col, pii)
            for user, p in by_col[col]
            if user in users and p[0] <= close
        ]
        hits += [p for col in matching_keys(masked, pii) for p in masked[col] if p[0] <= close]
        if not hits:
            return pending(
                f"{pii} is masked, but no finished query by a masked user "
                f"({', '.join(sorted(users)) or 'none named'}) has read it yet.",
                (mask[1],),
            )
        read = min(hits)
        at = max(mask[0], read[0])
        return met(
            f"{pii} is masked and a masked user read it in a finished query at {clock(read[0])}.",
            (mask[1], read[1]),
            at,
        )
