"""The shared router of the sandbox's emulators, on its own (no socket)."""

from __future__ import annotations

from typing import Any

from airflow_provider_ledgerlink.sandbox.server import Request, Response, Router


def _handler(request: Request, **arguments: str) -> Response:
    return Response.json(arguments)


def _finds(router: Router, path: str) -> bool:
    return router.match("GET", path)[0] is not None


def _router(**options: Any) -> Router:
    router = Router(**options)
    router.add("GET", r"/items/(?P<item>\d+)", _handler)
    router.add(("POST", "put"), r"/items", _handler)
    return router


def test_match_names_the_handler_its_arguments_and_whether_the_path_exists():
    router = _router()

    assert router.match("GET", "/items/7") == (_handler, {"item": "7"}, True)
    assert router.match("PUT", "/items") == (_handler, {}, True)
    assert router.match("DELETE", "/items") == (None, {}, True)
    assert router.match("GET", "/other") == (None, {}, False)


def test_dispatch_calls_the_handler_answers_405_for_another_method_and_none_for_no_path():
    router = _router()

    assert router.dispatch(Request("GET", "", subpath="/items/7"), "/items/7").body == b'{"item":"7"}'
    assert router.dispatch(Request("DELETE", ""), "/items").status == 405
    assert router.dispatch(Request("GET", ""), "/other") is None


def test_paths_match_case_insensitively_unless_the_router_is_case_sensitive():
    assert _finds(_router(), "/ITEMS/7")
    assert not _finds(_router(case_sensitive=True), "/ITEMS/7")
    assert _finds(_router(case_sensitive=True), "/items/7")
