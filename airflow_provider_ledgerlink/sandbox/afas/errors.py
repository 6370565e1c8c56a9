"""AFAS Profit error answers: the functional error triple (HTTP 500) and the empty 401."""

from __future__ import annotations

import uuid

from airflow_provider_ledgerlink.sandbox.server import Response

GENERIC_ERROR_NUMBER = -2147180999
VALUE_ERROR_NUMBER = -2147220469
OUT_OF_MEMORY_ERROR_NUMBER = -2147024882
UPDATE_NOT_SUPPORTED_ERROR_NUMBER = -2147180996


_XML = "application/xml; charset=utf-8"


# ==================================================================================================
# Errors
# ==================================================================================================
class AfasError(Exception):
    """A functional error: HTTP 500 with the AFAS error triple."""

    def __init__(self, message: str, error_number: int = GENERIC_ERROR_NUMBER) -> None:
        super().__init__(message)
        self.message = message
        self.error_number = error_number

    def response(self) -> Response:
        return _error_response(self.message, self.error_number)


def _error_response(message: str, error_number: int = GENERIC_ERROR_NUMBER) -> Response:
    body = {
        "externalMessage": message,
        "errorNumber": error_number,
        "profitLogReference": uuid.uuid4().hex.upper(),
    }
    return Response.json(body, 500)


def _unexpected() -> AfasError:
    return AfasError("An unexpected error has occurred.")


def _field_not_found(name: str) -> AfasError:
    return AfasError(f"Connector field '{name}' not found")


def _out_of_memory() -> AfasError:
    return AfasError("Out of memory", OUT_OF_MEMORY_ERROR_NUMBER)


def _unauthorized() -> Response:
    return Response.empty(401, _XML)
