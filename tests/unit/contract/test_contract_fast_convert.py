"""Property: the generated record converters are the exact converters, value for value.

``compile_record_to_avro`` (every producer's validator) and ``compile_record_json_owned``
(a recording's lines) are the straight-line forms of ``compile_to_avro`` (+
``compile_to_json``). Valid data of every type (from the schemas) is mutated the ways a
bad line can be: a field replaced by any JSON-ish value (wrong types, out-of-range and
non-finite numbers, bools for ints, floats for ints, timestamps in other spellings), a
field dropped, a field added. Both forms must give the same datum or the same error.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.convert import (
    LONG_MAX,
    FieldError,
    _canonical_timestamp,
    compile_to_avro,
    compile_to_json,
    format_timestamp,
    parse_timestamp,
)
from services.contract.schemas import TYPE_TOPICS, load_contract
from services.core.events import ENVELOPE_KEYS

from .test_contract_properties import _data_strategy

pytestmark = pytest.mark.unit

CONTRACT = load_contract()


def _exact(event_type: str) -> tuple[Any, Any]:
    schema = CONTRACT.schema(event_type)
    named = dict(schema.parsed.get("__named_schemas", {}))
    view = {
        **schema.parsed,
        "fields": [f for f in schema.parsed["fields"] if f["name"] not in ENVELOPE_KEYS],
    }
    return compile_to_avro(view, named), compile_to_json(view, named)


EXACT = {t: _exact(t) for t in TYPE_TOPICS}

odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**63) - 1, LONG_MAX, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, 1.0, 2.5, -0.0, float("inf")]),
    st.text(max_size=8),
    st.sampled_from(
        [
            "2026-11-27T09:00:00.000Z",
            "2026-11-27T09:00:00Z",
            "2026-11-27t09:00:00.000z",
            "2026-11-27T09:00:00.000+00:00",
            "2026-11-27T09:00:00.0001Z",
            "2026-11-27T09:00:60.000Z",
            "2026-02-30T09:00:00.000Z",
            " 026-11-27T09:00:00.000Z",
            "2026-11-27T09:00:00.١٢٣Z",
            "COMPLETED",
            "",
        ]
    ),
    st.lists(st.one_of(st.text(max_size=4), st.integers(), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=4), st.one_of(st.text(max_size=4), st.integers()), max_size=3),
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    event_type = draw(st.sampled_from(sorted(TYPE_TOPICS)))
    data = draw(_data_strategy(event_type))
    for _ in range(draw(st.integers(0, 2))):
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        names = sorted(data)
        if action == "replace" and names:
            data[draw(st.sampled_from(names))] = draw(odd_values)
        elif action == "drop" and names:
            del data[draw(st.sampled_from(names))]
        elif action == "add":
            data[draw(st.text(max_size=6))] = draw(odd_values)
    return event_type, data


def _outcome(f: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", f(*args)
    except FieldError as exc:
        return "error", str(exc)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == True must not pass)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_generated_converters_equal_the_exact_ones(case: tuple[str, dict[str, Any]]) -> None:
    event_type, data = case
    to_avro, to_json = EXACT[event_type]
    schema = CONTRACT.schema(event_type)
    want = _outcome(to_avro, copy.deepcopy(data), "")
    got = _outcome(schema.data_to_avro, copy.deepcopy(data), "")
    assert want[0] == got[0] and _same(want[1], got[1]), (want, got)
    if schema.data_json_owned is not None:
        owned = _outcome(schema.data_json_owned, copy.deepcopy(data))
        if want[0] == "ok" and to_json is not None:
            want = ("ok", to_json(want[1]))
        assert want[0] == owned[0] and _same(want[1], owned[1]), (want, owned)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.integers(-(2**40), 253402300799999).map(format_timestamp),
        st.sampled_from(
            [
                "2026-11-27T09:00:00.000z",
                "2026-11-27 09:00:00.000Z",
                "2026-11-27t09:00:00.000Z",
                "2026-11-27T09:00:60.000Z",
                "0999-11-27T09:00:00.000Z",
                "2026-11-27T09:00:00.12aZ",
            ]
        ),
        st.text(max_size=26),
    )
)
def test_canonical_timestamp_means_the_round_trip_keeps_the_text(text: str) -> None:
    try:
        round_trip = format_timestamp(parse_timestamp(text))
    except (FieldError, ValueError, OverflowError, OSError):
        round_trip = None
    assert _canonical_timestamp(text) == (round_trip == text)
