"""A candidate's report as PDF, printed from its HTML page by headless Chromium.

The HTML page is the report (one template, one set of facts); the PDF is that page
printed, so the two never disagree. Chromium is Debian's package (``apt-get install
chromium``), the same one the scoreboard's browser test drives; ``proctor report
--chromium`` (``PROCTOR_CHROMIUM``) names another binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from services.errors import CohortError

PDF_MAGIC = b"%PDF-"


def chromium_binary(explicit: str | None = None) -> str:
    """The Chromium to print with: ``explicit`` (the CLI's ``--chromium``), or one on PATH."""
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            raise CohortError(f"{explicit} is not an executable Chromium")
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise CohortError(
        "printing a PDF needs Chromium: apt-get install chromium, or give --chromium "
        "(PROCTOR_CHROMIUM) with its path (the Markdown and HTML reports need nothing)"
    )


def html_to_pdf(page: Path, out: Path, chromium: str | None = None, timeout: float = 60.0) -> Path:
    """Print ``page`` to ``out``; a Chromium that fails or writes no PDF is an error."""
    binary = chromium_binary(chromium)
    profile = tempfile.mkdtemp(prefix="proctor-pdf-")
    out.unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
                f"--user-data-dir={profile}",
                f"--print-to-pdf={out}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CohortError(f"Chromium did not print {page} within {timeout:.0f} s") from exc
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if proc.returncode != 0 or not out.is_file() or out.read_bytes()[:5] != PDF_MAGIC:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise CohortError(
            f"Chromium ({binary}) did not print {page} to PDF (exit {proc.returncode}): "
            + " | ".join(tail)
        )
    return out


__all__ = ["chromium_binary", "html_to_pdf"]
