"""The Tripletex object model read from the shipped OpenAPI file; kept at this path for code that
imports it from here. It lives in :mod:`airflow_provider_ledgerlink.sandbox.tripletex.model`."""

from __future__ import annotations

from airflow_provider_ledgerlink.sandbox.tripletex.model import (
    SPEC_FILE,
    complete,
    field_names,
    list_parameters,
    missing_defaults,
    properties,
    references,
    specification,
)

__all__ = [
    "SPEC_FILE",
    "complete",
    "field_names",
    "list_parameters",
    "missing_defaults",
    "properties",
    "references",
    "specification",
]
