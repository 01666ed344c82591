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
