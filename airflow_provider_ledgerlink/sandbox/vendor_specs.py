"""The vendors' specifications and recorded answers that ship with the sandbox (``specs/``).

Emulators generate their objects from these files and the conformance tests check requests and
answers against them, so both work on a fresh checkout without anything beside it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SPECS_DIR = Path(__file__).resolve().parent / "specs"


def spec_path(vendor: str, *parts: str) -> Path:
    """The path of a shipped file, e.g. ``spec_path("cash", "errors", "cash-errors.xml")``."""
    path = SPECS_DIR.joinpath(vendor, *parts)
    if not path.is_file():
        raise FileNotFoundError(f"no shipped {vendor} specification {'/'.join(parts)} (looked at {path})")
    return path


@cache
def load_json(vendor: str, *parts: str) -> Any:
    """A shipped JSON file, parsed once per process (treat the result as read-only)."""
    return json.loads(spec_path(vendor, *parts).read_text(encoding="utf-8"))
