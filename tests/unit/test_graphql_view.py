"""The GraphQL view's body decoding and transport refusals, without a database or a server."""

from __future__ import annotations

import json

import pytest
from cross_web import HTTPException

from app.graphql.view import GraphQLView, graphql_app, transport_refusal

VIEW: GraphQLView = graphql_app(graphiql=False, introspection=True)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"query": ', id="truncated"),
        pytest.param(b'{"query": "\xff\xfe"}', id="not-utf8"),
        pytest.param(b'{"v": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", id="nested-too-deep"),
        pytest.param(b'"{ strategy { name } }"', id="a-string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"42", id="a-number"),
        pytest.param(b'{"query": "{ a }", "variables": {"x": "a\\ud800"}}', id="lone-surrogate"),
        pytest.param(b'{"query": "{ a }", "variables": {"\\udc00": 1}}', id="lone-surrogate-in-a-key"),
    ],
)
def test_bodies_strawberry_would_fail_on_are_refused_with_400(body: bytes) -> None:
    with pytest.raises(HTTPException) as refused:
        VIEW.parse_json(body)
    assert refused.value.status_code == 400


def test_objects_and_batches_of_text_are_decoded() -> None:
    body = {"query": "{ strategy { name } }", "variables": {"name": "J\u00f6hn \U0001f600"}}
    assert VIEW.parse_json(json.dumps(body).encode()) == body
    assert VIEW.parse_json(json.dumps([body])) == [body]  # strawberry refuses the batch itself, further on


@pytest.mark.parametrize(("status", "code"), [(400, "INVALID_INPUT"), (404, "NOT_FOUND"), (405, "INVALID_INPUT")])
def test_a_transport_refusal_has_the_contracts_error_shape(status: int, code: str) -> None:
    response = transport_refusal(HTTPException(status, "Unable to parse request body as JSON"), "req-1")
    assert response.status_code == status
    assert json.loads(bytes(response.body)) == {
        "errors": [{"message": "Unable to parse request body as JSON", "extensions": {"code": code}}]
    }
