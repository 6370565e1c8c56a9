"""Fixtures of the system tests: the sandbox the deployment talks to, and the deployment's home."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SANDBOX_SEED = 42


@pytest.fixture
def system_sandbox() -> Iterator[Any]:
    from airflow_provider_ledgerlink.sandbox import Sandbox

    with Sandbox(seed=SANDBOX_SEED, port=0) as sandbox:
        yield sandbox


@pytest.fixture
def deployment_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("airflow-system")
    yield home
    if os.environ.get("LEDGERLINK_KEEP_SYSTEM_TEST_HOME"):
        print(f"Airflow home kept at {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
