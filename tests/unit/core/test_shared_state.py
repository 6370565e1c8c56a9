"""Shared state: Airflow Variables as every process of a deployment sees them, and the test double."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from airflow_provider_ledgerlink.core.shared_state import (
    AirflowVariableState,
    ListingUnsupportedError,
    MemoryState,
)


@pytest.fixture
def prefix() -> str:
    return f"ledgerlink_test_{uuid.uuid4().hex[:8]}_"


def test_airflow_variables_read_write_list_and_delete_outside_a_task(airflow_db, prefix):
    state = AirflowVariableState()

    assert state.get(prefix + "a") is None
    state.set_json(prefix + "a", {"reserved": 3})
    state.set(prefix + "b", "plain")

    assert state.get_json(prefix + "a") == {"reserved": 3}
    assert state.get(prefix + "b") == "plain"
    assert state.keys(prefix) == [prefix + "a", prefix + "b"]
    state.delete(prefix + "a")
    state.delete(prefix + "missing")  # not an error
    assert state.keys(prefix) == [prefix + "b"]


def test_listing_is_a_real_prefix_match_although_sql_like_treats_underscore_as_a_wildcard(airflow_db, prefix):
    state = AirflowVariableState()
    state.set(prefix + "x", "1")
    lookalike = prefix.replace("_test_", "-test-") + "x"  # matches prefix as a LIKE pattern
    state.set(lookalike, "1")

    assert state.keys(prefix) == [prefix + "x"]


def test_every_airflow_variable_state_is_the_same_store():
    assert AirflowVariableState().identity == AirflowVariableState().identity
    assert MemoryState().identity != MemoryState().identity


def test_a_value_that_is_not_a_json_object_reads_as_missing():
    state = MemoryState()
    state.set("k", "not json")
    state.set("l", "[1, 2]")

    assert state.get_json("k") is None
    assert state.get_json("l") is None


def test_memory_state_can_pretend_listing_is_missing():
    state = MemoryState(can_list=False)
    assert not state.can_list
    with pytest.raises(ListingUnsupportedError):
        state.keys("x")


def test_async_access_runs_the_blocking_calls_off_the_event_loop():
    state = MemoryState()

    async def roundtrip() -> dict | None:
        await state.aset_json("k", {"n": 1})
        value = await state.aget_json("k")
        await state.adelete("k")
        return value

    assert asyncio.run(roundtrip()) == {"n": 1}
    assert state.get("k") is None
