"""The proctor's pages in a real browser: the cohort page and a candidate's page, after a
graded exam of three candidates (the live pipeline, as ``test_scoreboard_browser``).

Headless Chromium logs into Superset and reads what the pages show: every candidate's
criteria with their state names on the cohort page must be Trino's
``grading.candidate_criteria``; the candidate link (a native filter in the URL) narrows the
candidate page to that one candidate; a candidate's own login, under Superset's
row-level security, sees only their rows. Screenshots of both pages go to docs/.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections import Counter
from typing import Any

import pytest

from services.scoreboard.bundle import CANDIDATE_SLUG, COHORT_SLUG
from services.stack.catalog import trino_connect
from services.stack.config import REPO_ROOT
from tests.e2e.test_scoreboard_browser import _driver, _login, graded_exam

__all__ = ["graded_exam"]  # the fixture, imported for this module

# the live demo alone takes 5-10 minutes on a busy 2-core machine
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]

COHORT_PNG = REPO_ROOT / "docs" / "scoreboard-cohort.png"
CANDIDATE_PNG = REPO_ROOT / "docs" / "scoreboard-candidate.png"
#: the candidate whose page is opened, and who is given a login of their own
WHO = "finn"


def _trino(config: Any, sql: str) -> list[dict[str, Any]]:
    cur = trino_connect(config).cursor()
    cur.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _trino_criteria(config: Any) -> list[dict[str, Any]]:
    """Every exam's criteria (a candidate who sat several exams has several rows each)."""
    return _trino(config, "SELECT * FROM iceberg.grading.candidate_criteria")


def _shown(value: Any) -> str:
    """How Superset's table shows a value: N/A for null."""
    return "N/A" if value is None else str(value)


#: the rows of the table chart titled arguments[0], read in one step (the dashboard
#: redraws its charts every 10 s, so elements found one by one may go stale)
_ROWS_JS = """
const title = arguments[0];
for (const holder of document.querySelectorAll('.dashboard-component-chart-holder')) {
  const lines = holder.innerText.split('\\n').slice(0, 2).map(s => s.trim());
  if (!lines.includes(title)) continue;
  const heads = [...holder.querySelectorAll('table thead th')].map(h => h.innerText.trim());
  return [...holder.querySelectorAll('table tbody tr')]
    .map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()))
    .filter(c => c.length === heads.length)
    .map(c => Object.fromEntries(heads.map((h, i) => [h, c[i]])));
}
return null;
"""


def _chart_rows(driver: Any, title: str) -> list[dict[str, str]]:
    """The rendered rows of the table chart titled ``title``, by column header."""
    return list(driver.execute_script(_ROWS_JS, title) or [])


def _wait_rows(driver: Any, title: str, want: int, timeout_s: float = 240) -> list[dict[str, str]]:
    """The chart's rows once it shows ``want`` of them (or what it shows at the timeout)."""
    deadline = time.monotonic() + timeout_s
    rows: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        rows = _chart_rows(driver, title)
        if len(rows) >= want:
            return rows
        time.sleep(2)
    return rows


def _shot(driver: Any, path: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 50_000


def _candidate_url(superset: Any, candidate: str) -> str:
    """The candidate page filtered to one candidate, as the cohort page's links open it."""
    state = (
        f"(NATIVE_FILTER-candidate:(extraFormData:(filters:!((col:candidate_id,op:IN,"
        f"val:!({candidate})))),filterState:(value:!({candidate}))))"
    )
    return f"{superset.dashboard_url(CANDIDATE_SLUG)}?native_filters={state}"


def test_the_cohort_and_candidate_pages_show_what_trino_says(graded_exam: Any) -> None:
    config, superset = graded_exam
    expected = _trino_criteria(config)
    assert WHO in {r["candidate_id"] for r in expected}
    faults = _trino(config, "SELECT * FROM iceberg.grading.exam_faults")
    assert faults, "no exam of the run has a fault"
    beats = _trino(config, "SELECT * FROM iceberg.grading.collector_status")
    driver = _driver()
    try:
        _login(driver, superset.address, superset.settings.user, superset.password())

        # the cohort page: every exam's criteria, with the state's name
        driver.get(superset.dashboard_url(COHORT_SLUG))
        rows = _wait_rows(driver, "Criteria by candidate", len(expected))
        assert Counter(
            (r["candidate"], r["criterion"], r["part"], r["state"], r["minutes left"]) for r in rows
        ) == Counter(
            (w["candidate_id"], w["criterion_id"], w["part"], w["state"], _shown(w["minutes_left"]))
            for w in expected
        ), "the cohort page and Trino differ"
        # where candidates got stuck: per criterion, the parts that ended without it met
        want_stuck = Counter(
            r["criterion_id"]
            for r in expected
            if r["part"] != "overall" and r["window_state"] == "closed" and r["state"] != "met"
        )
        assert want_stuck, "nobody got stuck anywhere: the run shows nothing to check"
        stuck = _wait_rows(driver, "Where candidates got stuck", len(want_stuck))
        got_stuck = {r["criterion"]: int(r["not met at part end"]) for r in stuck}
        assert {k: v for k, v in got_stuck.items() if v} == dict(want_stuck)
        # the fault and the minutes to root cause, from columns
        shown_faults = _wait_rows(driver, "Injected fault and time to root cause", len(faults))
        assert Counter(
            (r["candidate"], r["fault"], r["minutes to root cause"]) for r in shown_faults
        ) == Counter(
            (f["candidate_id"], f["fault"], _shown(f["root_cause_minutes"])) for f in faults
        )
        # collector health per platform
        health = _wait_rows(driver, "Collector health", len(beats))
        assert {(r["platform"], r["collector"], r["status"]) for r in health} == {
            (b["platform_id"], b["collector"], b["status"]) for b in beats
        }
        _shot(driver, COHORT_PNG)

        # the candidate page, narrowed to one candidate by the native filter in the link
        driver.get(_candidate_url(superset, WHO))
        mine = [w for w in expected if w["candidate_id"] == WHO]
        rows = _wait_rows(driver, "Criteria", len(mine))
        assert Counter((r["criterion"], r["state"], r["window"]) for r in rows) == Counter(
            (w["criterion_id"], w["state"], _shown(w["window_state"])) for w in mine
        ), f"{WHO}'s page and Trino differ"
        evidence = {r["evidence"] for r in rows}
        for w in mine:
            if w["evidence"]:
                assert any(all(line in e for line in w["evidence"].splitlines()) for e in evidence)
        windows = _wait_rows(driver, "Time left per part", 1)
        assert windows and {r["candidate"] for r in windows} == {WHO}
        fault = _wait_rows(driver, "Injected fault and time to root cause", 1)
        assert fault and {r["candidate"] for r in fault} == {WHO}
        _shot(driver, CANDIDATE_PNG)
    finally:
        driver.quit()
        shutil.rmtree(getattr(driver, "profile_dir", ""), ignore_errors=True)


def test_a_candidate_login_sees_only_their_own_rows(graded_exam: Any) -> None:
    config, superset = graded_exam
    expected = _trino_criteria(config)
    mine = [w for w in expected if w["candidate_id"] == WHO]
    assert mine and len(mine) < len(expected)
    password = secrets.token_urlsafe(18)
    assert WHO in superset.grant_candidate(WHO, password)
    driver = _driver()
    try:
        _login(driver, superset.address, WHO, password)
        # the cohort page, unfiltered: row-level security leaves only their rows
        driver.get(superset.dashboard_url(COHORT_SLUG))
        rows = _wait_rows(driver, "Criteria by candidate", len(mine))
        assert rows, "the candidate's login sees no rows at all"
        assert Counter((r["candidate"], r["criterion"], r["state"]) for r in rows) == Counter(
            (w["candidate_id"], w["criterion_id"], w["state"]) for w in mine
        )
        health = _wait_rows(driver, "Collector health", 1)
        assert health and {r["candidate"] for r in health} == {WHO}
        # another candidate's page asked for by its link shows none of their rows
        other = next(w["candidate_id"] for w in expected if w["candidate_id"] != WHO)
        driver.get(_candidate_url(superset, other))
        windows = _wait_rows(driver, "Time left per part", 1, timeout_s=60)
        assert all(r["candidate"] == WHO for r in windows)
        assert not any(r["candidate"] == other for r in _chart_rows(driver, "Collector health"))
    finally:
        driver.quit()
        shutil.rmtree(getattr(driver, "profile_dir", ""), ignore_errors=True)
