"""Alasco error answers: FastAPI's 422 validation body and JSON:API ``errors`` documents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_ledgerlink.sandbox.server import Response


class AlascoError(Exception):
    """Raised inside a handler; carries the finished error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def validation_error(
    loc: Sequence[Any], msg: str, kind: str = "value_error", value: Any = None
) -> AlascoError:
    """FastAPI's 422 body: ``{"detail": [{"type", "loc", "msg", "input"}]}``."""
    detail: dict[str, Any] = {"type": kind, "loc": list(loc), "msg": msg}
    if value is not None:
        detail["input"] = value
    return AlascoError(Response.json({"detail": [detail]}, 422))


def jsonapi_error(
    status: int, title: str, detail: str, source: Mapping[str, str] | None = None
) -> AlascoError:
    error: dict[str, Any] = {"status": str(status), "title": title, "detail": detail}
    if source:
        error["source"] = dict(source)
    return AlascoError(Response.json({"data": None, "errors": [error]}, status))
