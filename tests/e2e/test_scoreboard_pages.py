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

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COHORT_PNG = REPO_ROOT / "docs" / "scoreboard-cohort.png"
CANDIDATE_PNG = REPO_ROOT / "docs" / "scoreboard-candidate.png"
#: the candidate whose page is opened, and who is given a login of their own
WHO = "finn"


def _trino_criteria(config: Any) -> dict[tuple[str, str], dict[str, Any]]:
    cur = trino_connect(config).cursor()
    cur.execute("SELECT * FROM iceberg.grading.candidate_criteria")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return {(r["candidate_id"], r["criterion_id"]): r for r in rows}


def _chart_rows(driver: Any, title: str) -> list[dict[str, str]]:
    """The rendered rows of the table chart titled ``title``, by column header."""
    from selenium.webdriver.common.by import By

    for chart in driver.find_elements(By.CSS_SELECTOR, ".dashboard-component-chart-holder"):
        if title not in chart.text.splitlines()[0:2]:
            continue
        heads = [h.text.strip() for h in chart.find_elements(By.CSS_SELECTOR, "table thead th")]
        rows = []
        for tr in chart.find_elements(By.CSS_SELECTOR, "table tbody tr"):
            cells = [td.text.strip() for td in tr.find_elements(By.CSS_SELECTOR, "td")]
            if len(cells) == len(heads):
                rows.append(dict(zip(heads, cells, strict=True)))
        return rows
    return []


def _wait_rows(driver: Any, title: str, want: int, timeout_s: float = 180) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout_s
    rows: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        rows = _chart_rows(driver, title)
        if len(rows) >= want:
            time.sleep(2)  # the other charts of the page finish drawing
            return _chart_rows(driver, title)
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
    candidates = sorted({c for c, _ in expected})
    assert WHO in candidates and len(candidates) >= 3
    driver = _driver()
    try:
        _login(driver, superset.address, superset.settings.user, superset.password())

        # the cohort page: every candidate's criteria, with the state's name
        driver.get(superset.dashboard_url(COHORT_SLUG))
        rows = _wait_rows(driver, "Criteria by candidate", len(expected))
        shown = {(r["candidate"], r["criterion"]): r for r in rows}
        assert set(shown) == set(expected), "the cohort page and Trino list other criteria"
        for key, row in shown.items():
            assert row["state"] == expected[key]["state"], key
            assert row["reason"] == expected[key]["reason"].strip(), key
        stuck = _chart_rows(driver, "Where candidates got stuck")
        assert stuck, "the stuck table shows nothing"
        want_stuck = Counter(
            k[1]
            for k, r in expected.items()
            if r["part"] != "overall" and r["window_state"] == "closed" and r["state"] != "met"
        )
        got_stuck = {r["criterion"]: int(r["not met at part end"]) for r in stuck}
        assert {k: v for k, v in got_stuck.items() if v} == dict(want_stuck)
        faults = _chart_rows(driver, "Injected fault and time to root cause")
        for r in faults:
            mine = [v for (c, _), v in expected.items() if c == r["candidate"]]
            assert r["fault"] == (mine[0]["fault"] or "N/A")
            minutes = mine[0]["root_cause_minutes"]
            assert r["minutes to root cause"] == ("N/A" if minutes is None else str(minutes))
        _shot(driver, COHORT_PNG)

        # the candidate page, narrowed to one candidate by the native filter in the link
        driver.get(_candidate_url(superset, WHO))
        mine = {k[1]: v for k, v in expected.items() if k[0] == WHO}
        rows = _wait_rows(driver, "Criteria", len(mine))
        assert len(rows) == len(mine), f"{WHO}'s page shows {len(rows)} criteria, Trino {len(mine)}"
        assert {r["criterion"]: r["state"] for r in rows} == {
            k: v["state"] for k, v in mine.items()
        }
        windows = _chart_rows(driver, "Time left per part")
        assert windows and {r["candidate"] for r in windows} == {WHO}
        _shot(driver, CANDIDATE_PNG)
    finally:
        driver.quit()
        shutil.rmtree(getattr(driver, "profile_dir", ""), ignore_errors=True)


def test_a_candidate_login_sees_only_their_own_rows(graded_exam: Any) -> None:
    config, superset = graded_exam
    expected = _trino_criteria(config)
    mine = {k[1]: v for k, v in expected.items() if k[0] == WHO}
    assert mine and len(mine) < len(expected)
    password = secrets.token_urlsafe(18)
    assert WHO in superset.grant_candidate(WHO, password)
    driver = _driver()
    try:
        _login(driver, superset.address, WHO, password)
        # the cohort page unfiltered: row-level security leaves only their rows
        driver.get(superset.dashboard_url(COHORT_SLUG))
        rows = _wait_rows(driver, "Criteria by candidate", len(mine))
        time.sleep(5)
        rows = _chart_rows(driver, "Criteria by candidate")
        assert rows, "the candidate's login sees no rows at all"
        assert {r["candidate"] for r in rows} == {WHO}
        assert {r["criterion"]: r["state"] for r in rows} == {
            k: v["state"] for k, v in mine.items()
        }
        # another candidate's page asked for by URL shows nothing of theirs
        other = next(c for c, _ in expected if c != WHO)
        driver.get(_candidate_url(superset, other))
        time.sleep(20)
        assert _chart_rows(driver, "Criteria") == []
    finally:
        driver.quit()
        shutil.rmtree(getattr(driver, "profile_dir", ""), ignore_errors=True)
