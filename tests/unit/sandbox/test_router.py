"""The shared router of the sandbox's emulators, on its own (no socket): path and query-string
routes, the any-method route, 405, case sensitivity."""

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


def _answer(name: str):
    return lambda request, **groups: Response.json({"route": name, **groups})


def _dispatch(router: Router, method: str, path: str, query: str = "") -> Response | None:
    return router.dispatch(Request(method, path, query), path)


def test_a_query_route_needs_both_the_path_and_the_query_string_to_match() -> None:
    router = Router()
    router.add("GET", r"/", _answer("description"), query=r"api/(?P<version>\d\.\d)/wsdl")
    router.add("POST", r"/", _answer("endpoint"), query=r"api/3\.0")

    described = _dispatch(router, "GET", "/", "API/3.0/WSDL")
    assert described is not None and described.body == b'{"route":"description","version":"3.0"}'
    called = _dispatch(router, "POST", "/", "api/3.0")
    assert called is not None and called.body == b'{"route":"endpoint"}'
    assert _dispatch(router, "GET", "/", "api/3.0/wsdl&x") is None  # the whole query string must match
    assert _dispatch(router, "GET", "/other", "api/3.0/wsdl") is None
    wrong_method = _dispatch(router, "GET", "/", "api/3.0")
    assert wrong_method is not None and wrong_method.status == 405


def test_the_any_method_route_takes_every_method_and_routes_keep_their_order() -> None:
    router = Router()
    router.add("POST", r"/api/v2/(?P<action>.+)", _answer("v2"))
    router.add("*", r"/api", _answer("v1"))
    router.add("*", r".*", _answer("fallback"))

    for method in ("GET", "POST", "DELETE", "OPTIONS"):
        answer = _dispatch(router, method, "/api")
        assert answer is not None and answer.body == b'{"route":"v1"}'
    inserted = _dispatch(router, "POST", "/api/v2/weborder.insert")
    assert inserted is not None and inserted.body == b'{"route":"v2","action":"weborder.insert"}'
    fallback = _dispatch(router, "GET", "/api/v2/weborder.insert")  # not 405: a later route takes it
    assert fallback is not None and fallback.body == b'{"route":"fallback"}'
