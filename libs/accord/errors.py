"""The root of accord's exceptions: every error the library raises on purpose derives from AccordError.

`retryable` says whether trying the same thing again later can succeed, so callers decide by type,
never by message text.
"""

from __future__ import annotations


class AccordError(Exception):
    """Base class for errors raised by accord itself."""

    retryable: bool = False


class ConfigurationError(AccordError):
    """The environment or a setting asks for something impossible; the message says what to change."""


class TransientError(AccordError):
    """Trying again later may succeed: a dropped connection, a 429 or 5xx, a timeout before sending.

    `retry_after` (seconds) carries a server's hint, such as HTTP 429's Retry-After.
    """

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(AccordError):
    """The same input will fail the same way every time: dead-letter it or hand it to a person."""

    retryable = False


class InDoubtError(TransientError):
    """A write may or may not have been applied (a timeout after sending): read back before retrying."""
