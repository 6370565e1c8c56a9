"""Tripletex's error answers: status, numeric code, Norwegian message, validation messages and the
request id (see the ``ApiError`` schema of OpenAPI 2.72)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ERROR_LINK", "ApiError", "NotModified", "invalid", "not_found"]

ERROR_LINK = "https://www.tripletex.no/tripletex-api-2-0/"


class ApiError(Exception):
    """A Tripletex error answer; rendered with the request id by the emulator."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        validation: list[tuple[str, str]] | None = None,
        developer: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.validation = validation
        self.developer = developer
        self.headers = dict(headers or {})

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "link": ERROR_LINK,
            "developerMessage": self.developer,
            "validationMessages": [
                {"field": name, "message": text, "path": name, "rootId": None}
                for name, text in self.validation
            ]
            if self.validation is not None
            else None,
            "requestId": request_id,
        }


def invalid(field_name: str, message: str, code: int = 18000) -> ApiError:
    return ApiError(422, code, "Validering feilet.", validation=[(field_name, message)])


def not_found(kind: str, ident: Any) -> ApiError:
    return ApiError(
        404, 6000, "Objektet ble ikke funnet.", developer=f"{kind} with id {ident} does not exist"
    )


class NotModified(Exception):
    """The client already has the list's current ``versionDigest``: the answer is 304."""
