"""Whose failure a collector's error is: the heartbeat's ``error_kind``.

The grader turns a criterion into ``unknown`` only when the *proctor's* collector could
not see (services/core/heartbeats.py). A collector therefore says, with every unhealthy
heartbeat, whether the failure is its own or the candidate's:

* ``proctor_side``: it cannot reach its source (connection refused, timeout, DNS, our
  credentials refused), the broker or the registry refused it, a push source's canary is
  missing. When in doubt, this: a person looks rather than the candidate losing points.
* ``platform``: the candidate's service answered, with a server error (HTTP 5xx).
* ``payload``: the candidate's platform sent or served something that cannot become
  events: malformed, or too large for the broker.
"""

from __future__ import annotations

from services.collectors.http import SourceError
from services.errors import PayloadError

PROCTOR_SIDE = "proctor_side"
PLATFORM = "platform"
PAYLOAD = "payload"

#: what a broker or client says about a record larger than it takes
_TOO_LARGE = ("msg_size_too_large", "message size too large", "record_too_large", "too large")


def error_kind(exc: BaseException) -> str:
    """The heartbeat error kind of a failed poll or delivery."""
    if isinstance(exc, PayloadError):
        return PAYLOAD
    if isinstance(exc, SourceError):
        return exc.kind
    return delivery_kind(str(exc))


def delivery_kind(reason: str) -> str:
    """The kind of a broker refusal: a record too large is the payload's fault (the
    candidate's platform sent it); anything else (timeout, broker down) is ours."""
    low = reason.lower()
    return PAYLOAD if any(t in low for t in _TOO_LARGE) else PROCTOR_SIDE
