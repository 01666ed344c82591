"""How far a simulation's event times run ahead of the clock (the worker's skew check)."""

from __future__ import annotations

import pytest

from services.core.events import Event
from services.publisher.simulator import simulation_lead_s

pytestmark = pytest.mark.unit
NOW = 1_790_000_000_000
HOUR = 3_600_000


def _events(*offsets_ms: int, start: int = NOW) -> list[Event]:
    return [Event("tool.used", "p", f"e{i}", start + o, {}) for i, o in enumerate(offsets_ms)]


def test_real_time_from_now_never_leads() -> None:
    assert simulation_lead_s(_events(0, HOUR, 2 * HOUR), 1.0, NOW) == 0.0


def test_sped_up_leads_by_the_compressed_time() -> None:
    # 4 h at 600x: the last event goes out 24 s after now, dated 4 h after now
    lead = simulation_lead_s(_events(0, 4 * HOUR), 600.0, NOW)
    assert lead == pytest.approx(4 * 3600 - 24)


def test_a_past_recording_does_not_lead() -> None:
    assert simulation_lead_s(_events(0, HOUR, start=NOW - 10 * HOUR), 600.0, NOW) == 0.0
    assert simulation_lead_s([], 600.0, NOW) == 0.0
    # as fast as possible: everything goes out now, dated up to an hour ahead
    assert simulation_lead_s(_events(0, HOUR), 0, NOW) == 3600.0
