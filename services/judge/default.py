"""Which text judge grades by default: the one place to switch it.

It lives with the judges, not in the core: the core is handed a judge at the edge (the
worker's engine store, replay, regrade) and never imports a concrete one.
"""

from __future__ import annotations

from services.core.textjudge import TextJudge


def default_judge() -> TextJudge:
    """The offline sentence-level judge of ``services.judge`` (pure: no network, no model).

    The keyword judge in :mod:`services.core.simple_judge` stays as the reference the
    judge's bench compares against; the language-model judge is opt-in at the edge.
    """
    from services.judge.offline import OfflineJudge

    return OfflineJudge()
