"""A cohort's deployment made from the signed roster, so collectors exist for exactly the
platforms the proctor enrolled.

The roster (``proctor cohort add``) says who sits the exam on which platform; the cohort
deployment file says where each platform's collectors run and what differs from the
defaults. Rendering from the roster takes the candidates from its verified records and
only the rest (namespaces, overrides, the audit URL) from an optional base file, so a
platform cannot be deployed for that the proctor never enrolled, and a revoked one loses
its collectors at the next render.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.deploy.cohort import Cohort, parse_cohort
from services.errors import ConfigError
from services.trust.roster import RosterEntry


def cohort_from_roster(
    name: str,
    entries: Iterable[RosterEntry],
    base: Mapping[str, Any] | None = None,
    *,
    k8s_audit_url: str | None = None,
    where: str = "roster",
) -> Cohort:
    """The deployment of cohort ``name``: one candidate per active roster entry of it.

    ``base`` is a cohort file's content: its top-level settings are kept and its
    candidates are looked up by platform id for their namespace and overrides (default
    namespace: the platform id). A base candidate the roster does not hold, or holds in
    another cohort or revoked, is an error rather than a silent drop: the two files
    disagree and a proctor must decide which is right.
    """
    base = dict(base or {})
    if base.get("cohort") not in (None, name):
        raise ConfigError(f"{where}: the base file is for cohort {base['cohort']!r}, not {name!r}")
    given = base.pop("candidates", None) or []
    if not isinstance(given, list) or not all(isinstance(c, Mapping) for c in given):
        raise ConfigError(f"{where}: the base file's candidates must be a list of mappings")
    by_platform = {str(c.get("platform_id")): dict(c) for c in given}
    all_entries = {e.platform_id: e for e in entries}
    enrolled = {p: e for p, e in all_entries.items() if e.cohort == name and not e.revoked}
    stray = sorted(set(by_platform) - set(enrolled))
    if stray:
        why = []
        for p in stray:
            held = all_entries.get(p)
            if held is None:
                why.append(f"{p} is not in the roster")
            elif held.revoked:
                why.append(f"{p} is revoked")
            else:
                why.append(f"{p} sits in cohort {held.cohort or '(none)'!r}")
        raise ConfigError(
            f"{where}: the base file names platforms cohort {name!r} does not hold: "
            + "; ".join(why)
            + " (enroll them with `proctor cohort add`, or take them out of the base file)"
        )
    if not enrolled:
        raise ConfigError(
            f"{where}: cohort {name!r} has no active platform in the verified roster "
            "(`proctor cohort list` shows what it holds)"
        )
    candidates = [
        {"namespace": p, **by_platform.get(p, {}), "platform_id": p} for p in sorted(enrolled)
    ]
    raw: dict[str, Any] = {**base, "cohort": name, "candidates": candidates}
    if k8s_audit_url is not None:
        raw["k8s_audit_url"] = k8s_audit_url
    if "k8s_audit_url" not in raw:
        raise ConfigError(
            f"{where}: no k8s_audit_url: give --k8s-audit-url or a base file that sets it "
            "(the https front of the k8s-audit receiver as the API servers reach it)"
        )
    return parse_cohort(raw, where)


__all__ = ["cohort_from_roster"]
