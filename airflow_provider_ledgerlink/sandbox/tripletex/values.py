"""Tripletex's wire values: Oslo dates and change timestamps, amounts in kroner, compact JSON."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_ledgerlink.sandbox.data import wallclock_seconds
from airflow_provider_ledgerlink.sandbox.tripletex.errors import invalid

__all__ = [
    "OSLO",
    "day_number",
    "day_text",
    "dumps",
    "money",
    "money_text",
    "oslo_timestamp",
    "parse_date",
    "parse_instant_wall",
    "to_cents",
]

OSLO = ZoneInfo("Europe/Oslo")


@lru_cache(maxsize=65536)
def _oslo_offset(hour_key: int) -> str:
    """``+01:00`` or ``+02:00`` for an Oslo wall-clock hour (seconds // 3600 since 1970)."""
    local = datetime(1970, 1, 1) + timedelta(hours=hour_key)
    offset = local.replace(tzinfo=OSLO).utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def oslo_timestamp(seconds: int) -> str:
    """Oslo wall-clock seconds as Tripletex writes change timestamps: ``2026-11-19T14:03:22+01:00``."""
    moment = datetime(1970, 1, 1) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds") + _oslo_offset(seconds // 3600)


@lru_cache(maxsize=4096)
def day_text(days: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=days)).isoformat()


def day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def parse_date(text: str | None, name: str, *, required: bool = False) -> date | None:
    if text is None or text == "":
        if required:
            raise invalid(name, "Kan ikke være null.", code=15000)
        return None
    try:
        return date.fromisoformat(text.strip()[:10]) if "T" in text else date.fromisoformat(text.strip())
    except ValueError:
        raise invalid(name, f"Ugyldig dato: {text}. Format er yyyy-MM-dd.", code=15000) from None


def parse_instant_wall(text: str, name: str) -> int:
    """``changedSince`` as Oslo wall-clock seconds: a value with ``Z`` or an offset is converted;
    a bare ``YYYY-MM-DD[THH:MM[:SS]]`` is taken as Oslo time (Tripletex is Norwegian)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise invalid(name, f"Ugyldig tidspunkt: {text}", code=21000) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(OSLO).replace(tzinfo=None)
    return wallclock_seconds(moment)


def money(cents: int) -> float:
    return cents / 100


def money_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def to_cents(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise invalid(name, "Må være et tall.", code=15000)
    try:
        return round(float(value) * 100)
    except ValueError:
        raise invalid(name, "Må være et tall.", code=15000) from None


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
