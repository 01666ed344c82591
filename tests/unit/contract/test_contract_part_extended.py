"""part.extended: the contract rules dead-letter what Avro lets through (issue 17)."""

from __future__ import annotations

from typing import Any

import pytest

from services.contract.convert import FieldError
from services.contract.rules import check_rules

pytestmark = pytest.mark.unit

GOOD: dict[str, Any] = {"exam_id": "e", "part": 1, "minutes": 15, "reason": "accommodation"}


def test_a_valid_extension_passes() -> None:
    check_rules("part.extended", GOOD)
    check_rules("part.extended", {**GOOD, "minutes": 1440, "part": 3})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"minutes": -5}, "minutes"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": 1441}, "minutes"),
        ({"minutes": True}, "minutes"),
        ({"part": 4}, "part"),
        ({"reason": "  "}, "reason"),
    ],
)
def test_a_bad_extension_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(FieldError) as err:
        check_rules("part.extended", {**GOOD, **change})
    assert field in str(err.value)
