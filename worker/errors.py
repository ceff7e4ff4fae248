"""One error root for the HTTP surface; every error renders in the spec's shape."""

from __future__ import annotations

import json
from typing import Any

UPGRADE_URL = "/docs/#pricing"
TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}

    def taxii_body(self, request_id: str) -> bytes:
        """The same error as a TAXII 2.1 error message resource."""
        error: dict[str, Any] = {
            "title": self.message,
            "error_id": request_id,
            "error_code": self.code,
            "http_status": str(self.status),
        }
        if self.details is not None:
            error["details"] = self.details
        return json.dumps(error, separators=(",", ":")).encode()

    def text_body(self, request_id: str) -> bytes:
        """The same error as one line of text, for clients of text routes (a firewall's log
        shows it as it is): ``<status> <code>: <message> [request_id <id>]``, then the details
        as compact JSON on a second line when there are any."""
        line = f"{self.status} {self.code}: {self.message} [request_id {request_id}]\n"
        if self.details is not None:
            line += "details: " + json.dumps(self.details, separators=(",", ":")) + "\n"
        return line.encode()

    def body(self, request_id: str) -> bytes:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        error["request_id"] = request_id
        return json.dumps({"error": error}, separators=(",", ":")).encode()


class InvalidParameter(ApiError):
    status = 400
    code = "invalid_parameter"


class MissingApiKey(ApiError):
    status = 401
    code = "missing_api_key"

    def __init__(self) -> None:
        super().__init__(
            'API key is required. Include it in the Authorization header as "Bearer sk_live_..."'
        )


class InvalidApiKey(ApiError):
    status = 401
    code = "invalid_api_key"


class InsufficientScope(ApiError):
    status = 403
    code = "insufficient_scope"

    def __init__(self, required: str, scopes: tuple[str, ...]) -> None:
        super().__init__(
            f'This endpoint requires the "{required}" scope',
            details={
                "required_scope": required,
                "your_scopes": list(scopes),
                "upgrade_url": UPGRADE_URL,
            },
        )


class NotFound(ApiError):
    status = 404
    code = "not_found"

    def __init__(self, message: str = "The requested resource was not found") -> None:
        super().__init__(message)


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class RateLimited(ApiError):
    status = 429
    code = "rate_limit_exceeded"


class Gone(ApiError):
    status = 410
    code = "build_gone"


class Unavailable(ApiError):
    status = 503
    code = "service_unavailable"


class InternalError(ApiError):
    status = 500
    code = "internal_error"

    def __init__(self) -> None:
        super().__init__("An internal error occurred. Please try again later.")
