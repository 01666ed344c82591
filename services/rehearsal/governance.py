"""The candidate's own Trino in a rehearsal: file-based access control masking the PII
column of the exam's sink table, its HTTP event listener posting every completed query to
proctor's trino receiver, and the reads that verify the mask as an analyst would.

A second Trino process per platform (services/platform/trino.py), not the stack's: the
listener's URL names one platform, and the rules file is that candidate's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.platform.trino import (
    CATALOG,
    CandidateTrino,
    EventListener,
    Mask,
    acl_rules,
)
from services.stack.config import StackConfig

#: the user the mask applies to, and the one allowed the real values
ANALYST = "analyst"
AUDITOR = "auditor"
PII = "email"
MASK_EXPRESSION = "'***'"


@dataclass
class PlatformTrino:
    """One platform's Trino and the table whose PII column its rules govern."""

    trino: CandidateTrino

    @classmethod
    def start(cls, workdir: Path, config: StackConfig, listener: EventListener) -> PlatformTrino:
        """The server up with rules that let only its admin in (the platform as handed over)."""
        trino = CandidateTrino(workdir, config, listener, rules=acl_rules([]))
        try:
            trino.start()
        except BaseException:
            trino.stop()
            raise
        return cls(trino)

    @property
    def access_control(self) -> Path:
        return self.trino.access_control_path

    def govern(self, namespace: str, table: str, masked: bool) -> str:
        """The candidate's rules: the analyst reads ``table`` with the PII column masked (or,
        without a mask, in clear); the auditor reads it in clear. Waits until Trino applies
        them, as its answer to the analyst shows."""
        if masked:
            mask = Mask(namespace, table, PII, MASK_EXPRESSION, ANALYST)
            rules = acl_rules([mask], readers=AUDITOR)
        else:
            rules = acl_rules([], readers=f"{ANALYST}|{AUDITOR}")
        self.trino.set_rules(rules)
        name = f"{CATALOG}.{namespace}.{table}"

        def applied() -> bool:
            rows = self.trino.query(ANALYST, f"SELECT {PII} FROM {name} LIMIT 1")
            return bool(rows) and (rows[0][0] == "***") == masked

        self.trino.wait_applied(applied, timeout_s=60.0, what="the candidate's rules")
        if masked:
            return f"rules mask {name}.{PII} as {MASK_EXPRESSION} for {ANALYST}; {AUDITOR} reads it"
        return f"rules let {ANALYST} and {AUDITOR} read {name} with {PII} in clear (no mask)"

    def verify(self, namespace: str, table: str) -> str:
        """The reads a candidate runs to show the mask: the analyst's and the auditor's."""
        name = f"{CATALOG}.{namespace}.{table}"
        sql = f"SELECT order_id, {PII} FROM {name} ORDER BY order_id LIMIT 2"
        masked = self.trino.run(ANALYST, sql)
        clear = self.trino.run(AUDITOR, sql)
        return (
            f"{ANALYST} read {PII} as {[r[1] for r in masked.rows]} (query {masked.query_id}), "
            f"{AUDITOR} as {[r[1] for r in clear.rows]} (query {clear.query_id})"
        )

    def stop(self) -> None:
        self.trino.stop()
