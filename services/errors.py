"""Errors the services raise; blueprints/errors.py turns them into the documented shape:
{"error": "...", "message": "...", "code": "UPPER_SNAKE"} with the documented status."""


class ApiError(Exception):
    status = 400
    error = "Bad request"
    code = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        code: str | None = None,
        status: int | None = None,
        details: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error = error or self.error
        self.code = code or self.code
        self.status = status or self.status
        self.details = details or {}
        self.headers = dict(headers or {})

    def to_dict(self) -> dict:
        body = {"error": self.error, "message": self.message, "code": self.code}
        body.update(self.details)
        return body


class ValidationError(ApiError):
    status = 400
    error = "Invalid request parameters"
    code = "VALIDATION_ERROR"


class Unauthorized(ApiError):
    status = 401
    error = "Unauthorized"
    code = "UNAUTHORIZED"


class Forbidden(ApiError):
    status = 403
    error = "Forbidden"
    code = "FORBIDDEN"


class NotFound(ApiError):
    status = 404
    error = "Not found"
    code = "NOT_FOUND"


class Conflict(ApiError):
    status = 409
    error = "Conflict"
    code = "CONFLICT"


class ServiceUnavailable(ApiError):
    status = 503
    error = "Service unavailable"
    code = "SERVICE_UNAVAILABLE"


def session_not_found() -> NotFound:
    return NotFound(
        "The requested session does not exist or has been deleted",
        error="Session not found",
        code="SESSION_NOT_FOUND",
    )
