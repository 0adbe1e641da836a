"""Domain errors: each carries the field it is about and the HTTP status it maps to.

The web layer turns these into ``{"error": {"code", "message", "field"}}`` and the CLI
into one line on stderr; neither re-validates.
"""

from __future__ import annotations


class AbtestError(Exception):
    """Base of every error a user can cause and fix."""

    status: int = 400
    code: str = "invalid"
    retry_after: int | None = None  # seconds, sent as Retry-After: the same request may be retried then

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "field": self.field}

    def headers(self) -> dict[str, str]:
        """HTTP headers the error's answer carries."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class ValidationError(AbtestError):
    """Input that breaks a rule of the definition format or an API schema."""

    status = 422
    code = "invalid"


class NotFound(AbtestError):
    status = 404
    code = "not_found"


class Conflict(AbtestError):
    """A legal request that the current state forbids (lifecycle, frozen variants, reused key)."""

    status = 409
    code = "conflict"


class InsufficientData(AbtestError):
    """A statistical method cannot give a number from these counts (n < 2, zero variance, …).

    The report shows ``message`` instead of a value; it never shows NaN or infinity.
    """

    status = 422
    code = "insufficient_data"


class BadRequest(AbtestError):
    """A request that cannot be read at all: malformed JSON, bytes that are not UTF-8."""

    status = 400
    code = "bad_request"


class Unauthorized(AbtestError):
    status = 401
    code = "unauthorized"


class Forbidden(AbtestError):
    status = 403
    code = "forbidden"


class UnsupportedMediaType(AbtestError):
    status = 415
    code = "unsupported_media_type"


class Unavailable(AbtestError):
    """The database cannot be reached; nothing was stored, so the same request may be retried."""

    status = 503
    code = "unavailable"


class Busy(AbtestError):
    """The database is locked by other writers (SQLite's one writer, a PostgreSQL lock timeout or
    deadlock): nothing was stored, and the same request retried shortly should go through."""

    status = 503
    code = "busy"


class Overloaded(AbtestError):
    """The request waited too long for a free server thread (ABTEST_QUEUE_TIMEOUT_MS): answered at
    once with nothing done, so the same request may be retried."""

    status = 503
    code = "overloaded"
    retry_after = 1


class Unsupported(AbtestError):
    """Asked of a part not built yet (e.g. study results on ClickHouse events): refused whole."""

    status = 501
    code = "not_implemented"
