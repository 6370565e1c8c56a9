"""Request bodies checked against an OpenAPI document's own schemas, with FastAPI's error list.

An emulator refuses what the vendor refuses when it reads the rules from the vendor's specification
instead of retyping them. This covers the JSON Schema subset FastAPI-generated specs use: ``$ref``,
``anyOf``, ``type``, ``properties``, ``required``, ``enum``, ``maxLength``, ``pattern``, ``minimum``,
``maximum``, ``items`` and the ``date`` and ``uuid`` formats. Each problem is one FastAPI/pydantic entry
``{"type", "loc", "msg", "input"}`` with ``loc`` starting at ``"body"``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def request_schema(spec: Mapping[str, Any], path: str, method: str) -> dict[str, Any]:
    """The JSON schema of ``method path``'s request body (``application/json``)."""
    body = spec["paths"][path][method.lower()]["requestBody"]
    return dict(body["content"]["application/json"]["schema"])


def validate(spec: Mapping[str, Any], schema: Mapping[str, Any], value: Any) -> list[dict[str, Any]]:
    """Every problem of ``value`` against ``schema`` (empty when it conforms)."""
    problems: list[dict[str, Any]] = []
    _check(spec, schema, value, ["body"], problems)
    return problems


def _resolve(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        target: Any = spec
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _problem(problems: list[dict[str, Any]], kind: str, loc: list[Any], msg: str, value: Any) -> None:
    problems.append({"type": kind, "loc": list(loc), "msg": msg, "input": value})


def _check(
    spec: Mapping[str, Any],
    schema: Mapping[str, Any],
    value: Any,
    loc: list[Any],
    problems: list[dict[str, Any]],
) -> None:
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        attempts = []
        for option in schema["anyOf"]:
            found: list[dict[str, Any]] = []
            _check(spec, option, value, loc, found)
            if not found:
                return
            attempts.append(found)
        # pydantic names the first non-null option's complaints
        problems.extend(next((a for a in attempts if a[0]["type"] != "none_required"), attempts[0]))
        return
    kind = schema.get("type")
    if kind == "null":
        if value is not None:
            _problem(problems, "none_required", loc, "Input should be None", value)
        return
    if kind == "object":
        if not isinstance(value, dict):
            _problem(problems, "dict_type", loc, "Input should be a valid dictionary", value)
            return
        for name in schema.get("required", ()):
            if name not in value:
                _problem(problems, "missing", [*loc, name], "Field required", value)
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _check(spec, sub, value[name], [*loc, name], problems)
        return
    if kind == "array":
        if not isinstance(value, list):
            _problem(problems, "list_type", loc, "Input should be a valid list", value)
            return
        for i, item in enumerate(value):
            _check(spec, schema.get("items", {}), item, [*loc, i], problems)
        return
    if kind == "string":
        if not isinstance(value, str):
            _problem(problems, "string_type", loc, "Input should be a valid string", value)
            return
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            limit = schema["maxLength"]
            _problem(
                problems, "string_too_long", loc, f"String should have at most {limit} characters", value
            )
        if "pattern" in schema and re.search(str(schema["pattern"]), value) is None:
            _problem(
                problems,
                "string_pattern_mismatch",
                loc,
                f"String should match pattern '{schema['pattern']}'",
                value,
            )
        fmt = schema.get("format")
        if fmt == "uuid":
            try:
                uuid.UUID(value)
            except ValueError:
                _problem(problems, "uuid_parsing", loc, "Input should be a valid UUID", value)
        elif fmt == "date":
            try:
                if not _DATE_RE.fullmatch(value):
                    raise ValueError(value)
                date.fromisoformat(value)
            except ValueError:
                _problem(problems, "date_from_datetime_parsing", loc, "Input should be a valid date", value)
    elif kind in ("integer", "number"):
        numeric = int if kind == "integer" else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric):
            name = "int" if kind == "integer" else "float"
            _problem(
                problems,
                f"{name}_type",
                loc,
                f"Input should be a valid {'integer' if name == 'int' else 'number'}",
                value,
            )
            return
        if "minimum" in schema and value < schema["minimum"]:
            _problem(
                problems,
                "greater_than_equal",
                loc,
                f"Input should be greater than or equal to {schema['minimum']:g}",
                value,
            )
        if "maximum" in schema and value > schema["maximum"]:
            _problem(
                problems,
                "less_than_equal",
                loc,
                f"Input should be less than or equal to {schema['maximum']:g}",
                value,
            )
    elif kind == "boolean" and not isinstance(value, bool):
        _problem(problems, "bool_type", loc, "Input should be a valid boolean", value)
        return
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(repr(option) for option in schema["enum"])
        _problem(problems, "enum", loc, f"Input should be {options}", value)
