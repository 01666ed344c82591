"""The candidate's side of the submission endpoint: build a submission, post it, retry safely.

Every submission carries an ``Idempotency-Key`` made once per invocation, so a retry after
a timeout or a 503 is the same event (same event id), never a second submission.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from services.errors import ConfigError, DeliveryError, ProctorError
from services.submission.server import IDEMPOTENCY_HEADER

TOKEN_ENV = "PROCTOR_SUBMISSION_TOKEN"
URL_ENV = "PROCTOR_SUBMISSION_URL"


class SubmissionRefused(ProctorError):
    """The endpoint refused the submission (the message is its reason): fix it, do not retry."""


@dataclass(frozen=True, slots=True)
class Submitted:
    """What the endpoint made of a submission."""

    event_id: str
    ts_ms: int
    event_type: str


def submit(
    url: str,
    token: str,
    event_type: str,
    fields: Mapping[str, Any],
    *,
    attempts: int = 4,
    timeout_s: float = 15.0,
) -> Submitted:
    """Post one submission; retries 503s and transport errors with the same Idempotency-Key."""
    if not token:
        raise ConfigError(f"no submission token: set {TOKEN_ENV} to the token the proctor gave you")
    key = str(uuid.uuid4())
    endpoint = f"{url.rstrip('/')}/v1/submissions/{event_type}"
    headers = {"Authorization": f"Bearer {token}", IDEMPOTENCY_HEADER: key}
    problem = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(2.0**attempt, 10.0))
        try:
            response = httpx.post(endpoint, json=dict(fields), headers=headers, timeout=timeout_s)
        except httpx.TransportError as exc:
            problem = f"{endpoint} did not answer ({exc})"
            continue
        if response.status_code == 503:
            problem = _error(response)
            continue
        if response.status_code != 201:
            raise SubmissionRefused(
                f"the submission was refused ({response.status_code}): {_error(response)}"
            )
        body = response.json()
        return Submitted(body["event_id"], int(body["ts"]), body["type"])
    raise DeliveryError(f"the submission was not accepted after {attempts} attempts: {problem}")


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text[:200]
