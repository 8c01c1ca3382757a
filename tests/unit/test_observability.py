"""Metrics helpers and the REST error mapping, without a database."""

from __future__ import annotations

import json
import logging

import pytest

from app.errors import AppError, Conflict, DatabaseUnavailable, InvalidInput, NotFound, Suppressed, Timeout
from app.rest import api as rest
from app.web.observability import MAX_OPERATION_NAMES, Metrics, error_codes, graphql_operation_name


def body(**request: object) -> bytes:
    return json.dumps(request).encode()


@pytest.mark.parametrize(
    ("request_body", "name"),
    [
        (body(query="{ resolve(identities: []) { status } }", operationName="WhoIsThis"), "WhoIsThis"),
        (body(query="{ resolve(identities: []) { status } }"), "resolve"),
        (body(query="query Q($ids: [IdentityInput!]!) @x { r: resolve(identities: $ids) { status } }"), "resolve"),
        (body(query="# a comment { nope }\nmutation { upsertProfile(input: {}) { created } }"), "upsertProfile"),
        (body(query="{ a }", operationName="not a name!"), "a"),
        (body(query=""), "unknown"),
        (body(variables={"operationName": "x"}), "unknown"),
        (b"[{}]", "unknown"),
        (b"{not json", "unknown"),
    ],
)
def test_the_operation_name_comes_from_operation_name_or_the_first_field(request_body: bytes, name: str) -> None:
    assert graphql_operation_name(request_body) == name


def test_the_variables_are_never_read_for_the_operation_name() -> None:
    request_body = body(query="query { resolve(identities: $i) { status } }", variables={"i": "+14155552671"})
    assert graphql_operation_name(request_body) == "resolve"


def test_operation_labels_are_bounded() -> None:
    metrics = Metrics()
    for n in range(MAX_OPERATION_NAMES):
        assert metrics.graphql_operation(f"Op{n}", "ok") == f"Op{n}"
    assert metrics.graphql_operation("OneTooMany", "ok") == "other"
    assert metrics.graphql_operation("Op0", "ok") == "Op0"


def test_error_codes_are_read_from_the_errors_of_a_body() -> None:
    errors = {"errors": [{"message": "m", "extensions": {"code": "TIMEOUT"}}, {"message": "n"}]}
    assert error_codes(json.dumps(errors).encode()) == ["TIMEOUT", "INTERNAL"]
    assert error_codes(b'{"data": {"x": 1}}') == []
    assert error_codes(b'{"data": {"errors": 1}}') == []
    assert error_codes(b"<html>errors</html>") == []


def test_each_metrics_object_has_a_registry_of_its_own() -> None:
    one, two = Metrics(), Metrics()
    one.observe_request("/healthz", "GET", 200, 0.001)
    assert b'route="/healthz"' in one.render()
    assert b'route="/healthz"' not in two.render()


def test_resolve_outcomes_and_database_errors_only_take_known_values() -> None:
    metrics = Metrics()
    metrics.resolve_outcome("FOUND", "graphql")
    metrics.resolve_outcome("whatever", "graphql")
    metrics.database_error("DATABASE_UNAVAILABLE")
    metrics.database_error("NOT_FOUND")
    text = metrics.render().decode()
    assert 'idgraph_resolve_outcomes_total{interface="graphql",status="FOUND"} 1.0' in text
    assert "whatever" not in text
    assert 'idgraph_database_errors_total{code="DATABASE_UNAVAILABLE"} 1.0' in text
    assert 'code="NOT_FOUND"' not in text


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("x"), 400),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (Suppressed("x"), 422),
        (DatabaseUnavailable("x"), 503),
        (Timeout("x"), 504),
    ],
)
def test_app_errors_map_to_http_statuses_with_their_code(error: AppError, status: int) -> None:
    response = rest.app_error_response(error, "req-12345678")
    assert response.status_code == status
    assert json.loads(bytes(response.body)) == {"errors": [{"message": "x", "extensions": {"code": error.code}}]}


def test_unexpected_errors_are_masked_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    email = "john.doe@example.com"
    try:
        raise RuntimeError(f"constraint violated for {email}")
    except RuntimeError as error:
        with caplog.at_level(logging.ERROR):
            response = rest.internal_error_response(error, "req-12345678")
    assert response.status_code == 500
    payload = json.loads(bytes(response.body))
    assert payload["errors"][0]["extensions"] == {"code": "INTERNAL", "requestId": "req-12345678"}
    assert "req-12345678" in payload["errors"][0]["message"]
    assert "john.doe" not in bytes(response.body).decode()
    assert "john.doe" not in caplog.text and "req-12345678" in caplog.text
