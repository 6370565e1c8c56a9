"""The write base: one loop, one summary, one policy for refusals and ambiguous answers, and the
old argument names of existing DAGs still accepted."""

from __future__ import annotations

import gzip
import json
import warnings
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.compat import AirflowProviderDeprecationWarning, TaskDeferred
from airflow_provider_ledgerlink.core.errors import AmbiguousWriteError, ValidationError, VendorError
from airflow_provider_ledgerlink.core.redaction import register_secret
from airflow_provider_ledgerlink.core.writes import (
    SUMMARY_KEYS,
    WRITE_STATUSES,
    LedgerLinkWriteOperator,
    renamed_arguments,
)

pytestmark = pytest.mark.usefixtures("forget_new_secrets")


class FakeHook:
    """Records what was sent; answers per record key: a status, a refusal or an ambiguous answer."""

    def __init__(self, answers: Mapping[str, Any]) -> None:
        self.answers = answers
        self.sent: list[str] = []
        self.closed = False

    def write(self, key: str) -> str:
        self.sent.append(key)
        answer = self.answers.get(key, "created")
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


class FakeWriteOperator(LedgerLinkWriteOperator):
    vendor = "Fake"
    record_noun = "thing"

    def __init__(
        self, *, answers: Mapping[str, Any] | None = None, things: Any = None, **kwargs: Any
    ) -> None:
        kwargs = renamed_arguments(type(self).__name__, kwargs, {"things": ("records", things)})
        super().__init__(**kwargs)
        self.answers = dict(answers or {})

    @cached_property
    def hook(self) -> FakeHook:
        return FakeHook(self.answers)

    @property
    def operation(self) -> str:
        return "write things"

    def describe(self, record: Mapping[str, Any], index: int) -> str:
        return f"key {record['key']}"

    def write_one(self, hook: FakeHook, record: Mapping[str, Any], index: int) -> dict[str, Any]:
        if not record.get("key"):
            raise ValueError("the thing has no key")
        return {"status": hook.write(str(record["key"])), "thing_id": index + 100}


class TaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def things(*keys: str) -> list[dict[str, str]]:
    return [{"key": key} for key in keys]


def ambiguous() -> AmbiguousWriteError:
    return AmbiguousWriteError(
        "Fake",
        "POST /things",
        "connection reset after the request was sent",
        hint="Look for it in Fake's list",
    )


def test_every_record_is_written_in_order_and_the_summary_has_every_key():
    answers = {"b": "updated", "c": "already_done", "d": "unchanged", "e": "skipped"}
    operator = FakeWriteOperator(task_id="w", records=things("a", "b", "c", "d", "e"), answers=answers)
    summary = operator.execute({"ti": TaskInstance()})
    assert tuple(summary) == SUMMARY_KEYS
    assert operator.hook.sent == ["a", "b", "c", "d", "e"]
    assert operator.hook.closed
    assert {key: summary[key] for key in SUMMARY_KEYS[:-1]} == {
        "records": 5,
        "created": 1,
        "updated": 1,
        "already_done": 1,
        "unchanged": 1,
        "skipped": 1,
        "failed": 0,
        "in_doubt": 0,
        "not_attempted": 0,
    }
    assert summary["results"][1] == {"index": 1, "record": "key b", "status": "updated", "thing_id": 101}


def test_one_record_object_and_an_empty_list_are_accepted():
    one = FakeWriteOperator(task_id="w", records={"key": "a"}).execute({})
    assert (one["records"], one["created"]) == (1, 1)
    none = FakeWriteOperator(task_id="w", records=[]).execute({})
    assert none["records"] == 0 and none["results"] == []


@pytest.mark.parametrize("records", ["a,b", 42])
def test_records_that_are_not_a_list_are_refused_by_name(records):
    with pytest.raises(ValidationError, match="Fake write things failed: records must be a list of thing"):
        FakeWriteOperator(task_id="w", records=records).execute({})


def test_records_and_records_path_exclude_each_other_and_one_is_needed(tmp_path):
    with pytest.raises(ValueError, match="either records or records_path"):
        FakeWriteOperator(task_id="w", records=[], records_path=str(tmp_path / "x.jsonl"))
    with pytest.raises(ValueError, match="give records or records_path"):
        FakeWriteOperator(task_id="w")


def test_a_refused_record_stops_the_loop_by_default_and_the_rest_is_not_attempted():
    ti = TaskInstance()
    refusal = VendorError("Fake", "POST /things", "amount missing", refused=True, status_code=500)
    operator = FakeWriteOperator(task_id="w", records=things("a", "b", "c"), answers={"b": refusal})
    with pytest.raises(ValidationError, match=r"1 of 3 things failed; first: thing key b: .*amount missing"):
        operator.execute({"ti": ti})
    assert operator.hook.sent == ["a", "b"]
    summary = ti.pushed["results"]
    assert (summary["created"], summary["failed"], summary["not_attempted"]) == (1, 1, 1)
    assert [r["status"] for r in summary["results"]] == ["created", "failed", "not_attempted"]


def test_with_continue_on_error_the_others_are_written_and_the_task_still_fails():
    ti = TaskInstance()
    operator = FakeWriteOperator(
        task_id="w",
        records=[{"key": "a"}, {"key": ""}, "not an object", {"key": "d"}],
        continue_on_error=True,
    )
    with pytest.raises(
        ValidationError, match="2 of 4 things failed; first: thing key : the thing has no key"
    ):
        operator.execute({"ti": ti})
    assert operator.hook.sent == ["a", "d"]
    summary = ti.pushed["results"]
    assert (summary["created"], summary["failed"], summary["not_attempted"]) == (2, 2, 0)
    assert "is not an object" in summary["results"][2]["error"]


@pytest.mark.parametrize("continue_on_error", [False, True])
def test_an_ambiguous_answer_stops_at_once_whatever_the_policy(continue_on_error):
    ti = TaskInstance()
    operator = FakeWriteOperator(
        task_id="w",
        records=things("a", "b", "c", "d"),
        answers={"b": ambiguous()},
        continue_on_error=continue_on_error,
    )
    with pytest.raises(AmbiguousWriteError) as raised:
        operator.execute({"ti": ti})
    assert operator.hook.sent == ["a", "b"], "nothing is sent after an ambiguous answer"
    text = str(raised.value)
    assert text.startswith("Fake write things failed: thing key b: connection reset")
    assert "Look for it in Fake's list" in text and "Nothing further was sent: 1 created" in text
    summary = ti.pushed["results"]
    assert (summary["created"], summary["in_doubt"], summary["not_attempted"]) == (1, 1, 2)
    assert summary["results"][1]["status"] == "in_doubt"


def test_an_ambiguous_answer_after_refusals_is_what_the_task_fails_with():
    refusal = ValidationError("Fake", "POST /things", "bad date")
    operator = FakeWriteOperator(
        task_id="w",
        records=things("a", "b", "c"),
        answers={"a": refusal, "b": ambiguous()},
        continue_on_error=True,
    )
    with pytest.raises(AmbiguousWriteError, match="thing key b"):
        operator.execute({"ti": TaskInstance()})
    assert operator.hook.sent == ["a", "b"]


def test_a_records_path_is_read_one_record_at_a_time(tmp_path: Path):
    """The first records are written before a bad line further down is even read."""
    path = tmp_path / "things.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"key": "a"}) + "\n\n" + json.dumps({"key": "b"}) + "\n{not json\n")
    ti = TaskInstance()
    operator = FakeWriteOperator(task_id="w", records_path=path.as_uri())
    with pytest.raises(ValidationError, match=r"could not read the things after 2: .*line 4 is not JSON"):
        operator.execute({"ti": ti})
    assert operator.hook.sent == ["a", "b"]
    assert ti.pushed["results"]["created"] == 2
    assert operator.hook.closed


def test_a_records_path_written_in_full(tmp_path: Path):
    path = tmp_path / "things.jsonl"
    path.write_text("".join(json.dumps({"key": k}) + "\n" for k in "abc"), encoding="utf-8")
    summary = FakeWriteOperator(task_id="w", records_path=str(path)).execute({})
    assert (summary["records"], summary["created"]) == (3, 3)


def test_what_a_hostile_answer_echoed_is_scrubbed_from_errors_and_xcom():
    secret = "tok-3f9a7c1e5b2d"
    register_secret(secret)
    ti = TaskInstance()
    echo = ValidationError("Fake", "POST /things", f"bad request, token was {secret}")
    operator = FakeWriteOperator(task_id="w", records=things("a"), answers={"a": echo})
    with pytest.raises(ValidationError) as raised:
        operator.execute({"ti": ti})
    assert secret not in str(raised.value)
    assert secret not in json.dumps(ti.pushed)


def test_a_status_outside_the_vocabulary_is_a_programming_error():
    operator = FakeWriteOperator(task_id="w", records=things("a"), answers={"a": "sent"})
    with pytest.raises(TypeError, match="returned status 'sent'"):
        operator.execute({})
    assert "sent" not in WRITE_STATUSES


def test_an_old_argument_name_still_works_and_says_the_new_one():
    with pytest.warns(AirflowProviderDeprecationWarning, match="'things' is deprecated; use 'records'"):
        operator = FakeWriteOperator(task_id="w", things=things("a"))
    assert operator.records == things("a")
    assert operator.execute({})["created"] == 1


def test_the_new_name_alone_warns_nothing_and_both_names_are_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FakeWriteOperator(task_id="w", records=things("a"))
    with pytest.raises(ValueError, match="give records only"):
        FakeWriteOperator(task_id="w", records=things("a"), things=things("b"))


def test_records_and_records_path_are_templated():
    assert {"records", "records_path"} <= set(FakeWriteOperator.template_fields)


# --------------------------------------------------------------------------------------------------
# The batch form: every record in one write the vendor accepts or refuses as a whole
# --------------------------------------------------------------------------------------------------
class FakeBatchHook(FakeHook):
    def __init__(self, answer: Any) -> None:
        super().__init__({})
        self.answer = answer
        self.batches: list[list[str]] = []

    def write_all(self, keys: list[str]) -> str:
        self.batches.append(keys)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class FakeBatchOperator(FakeWriteOperator):
    """Writes every thing in one batch, then reports the batch's id beside the summary, or defers."""

    writes_in_one_batch = True

    def __init__(self, *, answer: Any = "created", defer: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answer = answer
        self.defers = defer

    @cached_property
    def hook(self) -> FakeBatchHook:
        return FakeBatchHook(self.answer)

    def write_one(self, hook: Any, record: Mapping[str, Any], index: int) -> dict[str, Any]:
        raise AssertionError("a batch operator writes no record on its own")

    def write_batch(self, hook: FakeBatchHook, records: list[Any]) -> list[dict[str, Any]]:
        if any(not isinstance(r, Mapping) or not r.get("key") for r in records):
            raise ValidationError("Fake", "POST /batch", "every thing needs a key; nothing was sent")
        status = hook.write_all([str(r["key"]) for r in records])
        return [{"status": status} for _ in records]

    def finish(self, context: Any, summary: dict[str, Any]) -> dict[str, Any]:
        assert not self.hook.closed, "finish runs before the hook is closed"
        if self.defers:
            raise TaskDeferred(trigger=object(), method_name="execute_complete", kwargs={"summary": summary})
        return {**summary, "batch_id": "B1"}


def test_a_batch_is_written_once_and_summarised_per_record_with_the_operators_own_keys():
    operator = FakeBatchOperator(task_id="w", records=things("a", "b", "c"))
    summary = operator.execute({"ti": TaskInstance()})
    assert operator.hook.batches == [["a", "b", "c"]] and operator.hook.sent == []
    assert operator.hook.closed
    assert tuple(summary) == (*SUMMARY_KEYS, "batch_id")
    assert (summary["records"], summary["created"], summary["batch_id"]) == (3, 3, "B1")
    assert summary["results"][2] == {"index": 2, "record": "key c", "status": "created"}
    again = FakeBatchOperator(task_id="w", records=things("a", "b", "c"), answer="already_done").execute({})
    assert (again["created"], again["already_done"]) == (0, 3)


def test_a_refused_batch_fails_every_record_with_its_own_error_and_pushes_the_summary():
    ti = TaskInstance()
    operator = FakeBatchOperator(task_id="w", records=[{"key": "a"}, {"key": ""}], continue_on_error=True)
    with pytest.raises(ValidationError, match="every thing needs a key; nothing was sent"):
        operator.execute({"ti": ti})
    assert operator.hook.batches == [] and operator.hook.closed
    summary = ti.pushed["results"]
    assert (summary["records"], summary["failed"], summary["created"]) == (2, 2, 0)
    assert "every thing needs a key" in summary["results"][0]["error"]
    assert "error" not in summary["results"][1]  # the batch's error once, not per record


def test_an_ambiguous_answer_to_a_batch_puts_every_record_in_doubt():
    ti = TaskInstance()
    operator = FakeBatchOperator(task_id="w", records=things("a", "b"), answer=ambiguous())
    with pytest.raises(AmbiguousWriteError, match="Look for it in Fake's list"):
        operator.execute({"ti": ti})
    assert operator.hook.batches == [["a", "b"]]
    summary = ti.pushed["results"]
    assert (summary["in_doubt"], summary["not_attempted"]) == (2, 0)
    assert [r["status"] for r in summary["results"]] == ["in_doubt", "in_doubt"]


def test_a_batch_is_not_sent_when_its_records_path_cannot_be_read_in_full(tmp_path: Path):
    path = tmp_path / "things.jsonl"
    path.write_text(json.dumps({"key": "a"}) + "\n{not json\n", encoding="utf-8")
    ti = TaskInstance()
    operator = FakeBatchOperator(task_id="w", records_path=str(path))
    with pytest.raises(ValidationError, match=r"could not read the things after 1: .*line 2 is not JSON"):
        operator.execute({"ti": ti})
    assert operator.hook.batches == [] and ti.pushed == {} and operator.hook.closed


def test_a_batch_operator_may_defer_after_writing_and_the_hook_is_closed():
    operator = FakeBatchOperator(task_id="w", things=things("a"), defer=True)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert deferred.value.kwargs["summary"]["created"] == 1
    assert operator.hook.batches == [["a"]] and operator.hook.closed


def test_a_batch_must_answer_for_every_record_with_a_known_status():
    class Short(FakeBatchOperator):
        def write_batch(self, hook: FakeBatchHook, records: list[Any]) -> list[dict[str, Any]]:
            return [{"status": "created"}]

    with pytest.raises(TypeError, match="returned 1 results for 2 records"):
        Short(task_id="w", records=things("a", "b")).execute({})
    with pytest.raises(TypeError, match="returned status 'sent'"):
        FakeBatchOperator(task_id="w", records=things("a"), answer="sent").execute({})
