"""Names spliced into the grader's Trino SQL: only plain lower-case SQL names pass, so a
namespace or table name from settings can never change a statement."""

from __future__ import annotations

import re

from services.errors import ConfigError

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _check(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"{what} {name!r} is not a plain lower-case SQL name (letters, digits, _); "
            "choose another namespace or table name"
        )
    return name


__all__ = ["_check"]
