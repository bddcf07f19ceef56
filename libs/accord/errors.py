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
