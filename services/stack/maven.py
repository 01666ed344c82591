"""Fetch stack components from Maven Central with `mvn`, cached in ~/.m2.

`mvn` is the one download client the stack uses for JVM software, so a second run (and
every CI run on a warm machine) resolves from the local repository without the network.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from services.errors import StackError

Progress = Callable[[str], None]

M2_REPO = Path.home() / ".m2" / "repository"


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("mvn not found: install Maven with `apt-get install maven`")
    return mvn


def artifact_path(coords: str) -> Path:
    """Path in ~/.m2 of ``group:artifact:version[:packaging[:classifier]]``."""
    parts = coords.split(":")
    if len(parts) < 3:
        raise StackError(
            f"bad Maven coordinates {coords!r}: want group:artifact:version[:type[:classifier]]"
        )
    group, artifact, version = parts[0], parts[1], parts[2]
    packaging = parts[3] if len(parts) > 3 else "jar"
    classifier = f"-{parts[4]}" if len(parts) > 4 else ""
    return (
        M2_REPO.joinpath(*group.split("."), artifact, version)
        / f"{artifact}-{version}{classifier}.{packaging}"
    )


def fetch(coords: str, progress: Progress) -> Path:
    """Download one artifact (no dependencies) unless it is cached; return its path."""
    path = artifact_path(coords)
    if path.is_file():
        return path
    progress(f"mvn: fetching {coords}")
    _run(
        [
            _mvn(),
            "-B",
            "-q",
            _repo_flag(),
            "dependency:get",
            f"-Dartifact={coords}",
            "-Dtransitive=false",
        ],
        coords,
    )
    if not path.is_file():
        raise StackError(f"mvn reported success but {path} is missing; check {coords!r}")
    return path


def classpath(coords: Sequence[str], workdir: Path, progress: Progress) -> list[Path]:
    """Resolve jars and their runtime dependencies; return the classpath entries.

    A throw-away POM lists the artifacts; `dependency:build-classpath` writes the resolved
    class path, which is cached next to the POM until the artifact list changes.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    deps = []
    for c in coords:
        g, a, v = c.split(":")[:3]
        deps.append(
            f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
            f"<version>{v}</version></dependency>"
        )
    pom = textwrap.dedent(
        """\
        <project xmlns="http://maven.apache.org/POM/4.0.0">
          <modelVersion>4.0.0</modelVersion>
          <groupId>local.proctor</groupId><artifactId>stack-classpath</artifactId>
          <version>1</version><packaging>pom</packaging>
          <dependencies>{deps}</dependencies>
        </project>
        """
    ).format(deps="".join(deps))
    pom_file = workdir / "pom.xml"
    cp_file = workdir / "classpath.txt"
    if pom_file.is_file() and pom_file.read_text() == pom and cp_file.is_file():
        entries = [Path(p) for p in cp_file.read_text().strip().split(":") if p]
        if entries and all(p.is_file() for p in entries):
            return entries
    pom_file.write_text(pom)
    progress(f"mvn: resolving {', '.join(coords)} and dependencies")
    _run(
        [
            _mvn(),
            "-B",
            "-q",
            _repo_flag(),
            "-f",
            str(pom_file),
            "dependency:build-classpath",
            "-Dmdep.includeScope=runtime",
            f"-Dmdep.outputFile={cp_file}",
        ],
        ", ".join(coords),
    )
    return [Path(p) for p in cp_file.read_text().strip().split(":") if p]


def _repo_flag() -> str:
    # mvn takes its home from the password database, not $HOME; name the local repository
    # so the paths computed here and the ones mvn writes to can never differ.
    return f"-Dmaven.repo.local={M2_REPO}"


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise StackError(f"mvn could not fetch {what} (exit {proc.returncode}):\n{tail}")
