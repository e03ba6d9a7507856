"""Error tree of Genpon.

Every error a caller can cause is a :class:`GenponError` carrying a machine-readable ``code``,
a human message (Japanese first: staff read it) and optional structured ``details``. The API
maps the class to an HTTP status in one place (``api/errors.py``); the CLI prints one line.

    GenponError
    ├── InvalidInput      422  bad field, bad CSV row, bad query
    ├── NotFound          404  also used for "exists but you may not see it"
    ├── Forbidden         403  visible but not allowed (e.g. deposit into a read-only folder)
    ├── Unauthorized      401  missing or bad credentials
    ├── Conflict          409  duplicate, idempotency mismatch, state conflict
    ├── PayloadTooLarge   413
    ├── UnsupportedType   415
    └── TooManyRequests   429  throttled (e.g. sign-in after repeated failures)
"""

from __future__ import annotations

from typing import Any


class GenponError(Exception):
    status_code: int = 400

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(GenponError):
    status_code = 422


class NotFound(GenponError):
    status_code = 404


class Forbidden(GenponError):
    status_code = 403


class Unauthorized(GenponError):
    status_code = 401


class Conflict(GenponError):
    status_code = 409


class PayloadTooLarge(GenponError):
    status_code = 413


class UnsupportedType(GenponError):
    status_code = 415


class TooManyRequests(GenponError):
    status_code = 429


class Unavailable(GenponError):
    """A required part of the installation is missing or down (設定・環境の不備)."""

    status_code = 503
