"""PDF reports: the candidate's HTML page printed by Debian's Chromium, read back as text.

Needs /usr/bin/chromium (scripts/bootstrap.sh installs it for the scoreboard's browser
test); the failure paths need none.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from services.cohort.cli import report_cmd
from services.cohort.pdf import chromium_binary, html_to_pdf
from services.contract.jsonl import write_jsonl
from services.errors import CohortError

from .test_cohort_report import events

pytestmark = pytest.mark.unit

needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="needs Debian's chromium (apt-get install chromium; scripts/bootstrap.sh does)",
)


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


@needs_chromium
def test_the_cli_prints_each_candidates_page_to_a_pdf_that_says_the_same(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    write_jsonl(events(), rec)
    out = CliRunner().invoke(report_cmd, [str(rec), "--out", str(tmp_path / "r"), "--pdf",
                                          "--candidate", "carol"])  # fmt: skip
    assert out.exit_code == 0, out.output
    pdf = tmp_path / "r" / "carol-exam-2026-11-27-carol.pdf"
    assert f"wrote {pdf}" in out.output
    text = pdf_text(pdf)
    assert "carol" in text and "p2.root_cause" in text
    assert "jane" in text  # the appeal's decider, as on the HTML page
    html = (tmp_path / "r" / "carol-exam-2026-11-27-carol.html").read_text()
    assert "p2.root_cause" in html


@needs_chromium
def test_markup_in_a_reason_is_printed_as_text_not_rendered(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text("<html><body><h1>alice</h1><p>&lt;b&gt;bold?&lt;/b&gt;</p></body></html>")
    text = pdf_text(html_to_pdf(page, tmp_path / "p.pdf"))
    assert "alice" in text and "<b>bold?</b>" in text


def test_a_missing_chromium_is_named_with_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CohortError, match="not an executable Chromium"):
        chromium_binary(str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CohortError, match="apt-get install chromium"):
        chromium_binary()


def test_a_chromium_that_prints_nothing_is_an_error_and_no_report_is_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "chromium"
    broken.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>")
    with pytest.raises(CohortError, match=r"exit 3\).*cannot open display"):
        html_to_pdf(page, tmp_path / "p.pdf", chromium=str(broken))
    assert not (tmp_path / "p.pdf").exists()
    # one that exits 0 but writes something other than a PDF is refused too
    liar = tmp_path / "liar"
    liar.write_text('#!/bin/sh\nfor a; do case $a in --print-to-pdf=*) echo hi > "${a#*=}";; esac; done\n')  # fmt: skip
    liar.chmod(liar.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(CohortError, match="did not print"):
        html_to_pdf(page, tmp_path / "p.pdf", chromium=str(liar))
    # the CLI checks for Chromium before it writes a single report
    monkeypatch.setenv("PROCTOR_CHROMIUM", str(tmp_path / "nowhere"))
    rec = tmp_path / "rec.jsonl"
    write_jsonl(events(), rec)
    out = CliRunner().invoke(report_cmd, [str(rec), "--out", str(tmp_path / "r"), "--pdf"])
    assert out.exit_code != 0 and "not an executable Chromium" in out.output
    assert not (tmp_path / "r").exists()
