"""The one exception hierarchy of proctor.

Every error a user can meet derives from :class:`ProctorError` and carries a message
that says what went wrong and what to do about it. Third-party errors are re-raised
as one of these with ``raise ... from exc`` so the cause stays visible.
"""

from __future__ import annotations


class ProctorError(Exception):
    """Root of every error proctor raises on purpose."""


class ConfigError(ProctorError):
    """A setting is missing or invalid (environment variable, flag or file)."""


class StackError(ProctorError):
    """A local stack component could not be installed, started, checked or stopped."""


class ContractError(ProctorError):
    """An event does not satisfy the event contract (schema, field, type or wire format)."""


class RubricError(ProctorError):
    """A rubric file is invalid; the message names the bad entry."""


class GradingError(ProctorError):
    """The grading engine was asked to do something it cannot (never raised for bad events)."""


class JudgeError(ProctorError):
    """A text judge could not produce a verdict."""


class SinkError(ProctorError):
    """Writing grades to the Iceberg table or the state topic failed."""


class RecordDecodeError(ContractError):
    """A Kafka record could not be decoded into a contract event.

    ``error_class`` is the dead-letter class (e.g. ``corrupt_bytes``, ``unknown_schema_id``)
    so a consumer can route the record to the DLQ without parsing the message.
    """

    def __init__(self, message: str, error_class: str) -> None:
        super().__init__(message)
        self.error_class = error_class


class RegistryError(ProctorError):
    """The schema registry could not be reached or refused a request.

    Not the record's fault: a consumer retries instead of dead-lettering good records.
    """


class DeliveryError(ProctorError):
    """The broker did not confirm a record (it may or may not have been written; retry is safe
    because producers are idempotent and consumers de-duplicate on event_id)."""


class PayloadError(ContractError):
    """A payload a collector received (webhook body, bridged record) cannot become events.

    ``error_class`` is the dead-letter class (e.g. ``corrupt_bytes`` for a body that is not
    JSON, ``missing_required_field``), so the receiver can dead-letter it with the reason.
    """

    def __init__(self, message: str, error_class: str = "invalid_field") -> None:
        super().__init__(message)
        self.error_class = error_class


class CohortError(ProctorError):
    """A cohort or exam action cannot be done as asked (unknown cohort or candidate, a part
    or minutes out of range); the message says what to run or change."""
