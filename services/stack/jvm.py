"""Find the Java runtime a JVM component needs, or say how to get it."""

from __future__ import annotations

from pathlib import Path

from services.errors import StackError

#: what to do when a Java major version is missing
_HOW_TO_GET = {
    17: "install it with `apt-get install openjdk-17-jre-headless`",
    25: "install a Java 25 JDK (Temurin 25 ships with this machine kind)",
}


def java(home: Path, major: int) -> Path:
    """The ``java`` binary under ``home``; a clear StackError when it is missing."""
    binary = home / "bin" / "java"
    if not binary.is_file():
        how = _HOW_TO_GET.get(major, f"install a Java {major} runtime")
        raise StackError(
            f"Java {major} not found at {home}: {how}, or set PROCTOR_JAVA{major}_HOME "
            "to the home of one"
        )
    return binary
