"""The shared router of the sandbox: path and query-string routes, the any-method route, 405."""

from __future__ import annotations

from airflow_provider_ledgerlink.sandbox.server import Request, Response, Router


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
