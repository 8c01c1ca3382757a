"""Error codes and masking of the GraphQL layer, without a database: what a client sees and what the logs hold."""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLError

from app.auth import Principal
from app.errors import Conflict, NotFound
from app.graphql.context import Context
from app.graphql.errors import code_of, coded, without_suggestions
from app.graphql.schema import build_schema

PHONE = "+14155552671"


def located(original: Exception | None, message: str = "boom") -> GraphQLError:
    return GraphQLError(message, path=["resolve"], original_error=original)


def test_an_app_error_keeps_its_message_and_code() -> None:
    error = coded(located(Conflict("two account ids")), "req-1")

    assert error.message == "two account ids"
    assert error.extensions == {"code": "CONFLICT"}


def test_an_unexpected_exception_is_masked_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    error = coded(located(RuntimeError(f"constraint on {PHONE}"), f"constraint on {PHONE}"), "req-2")

    assert error.message == "Unexpected error (request id req-2)."
    assert error.extensions == {"code": "INTERNAL", "requestId": "req-2"}
    assert "req-2" in caplog.text
    assert "RuntimeError" in caplog.text
    assert PHONE not in caplog.text


def test_document_and_variable_errors_are_invalid_input() -> None:
    parse_error = located(None, "Syntax Error: Unexpected '}'.")
    variable_error = located(GraphQLError("String cannot represent a non string value: 5"), "Variable '$i' invalid")

    assert code_of(parse_error) == "INVALID_INPUT"
    assert coded(variable_error, "r").extensions == {"code": "INVALID_INPUT"}
    assert code_of(located(NotFound("no such profile"))) == "NOT_FOUND"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Unknown argument 'identitie' on field 'Query.resolve'. Did you mean 'identities'?", "Unknown argument "
         "'identitie' on field 'Query.resolve'."),
        ("Expected value of type 'IdentityInput' not to include unknown field 'valu'. Did you mean 'value'? Found: "
         "{'key': 'k'}.", "Expected value of type 'IdentityInput' not to include unknown field 'valu'. Found: "
         "{'key': 'k'}."),
        ("Unknown type 'Resolutio'. Did you mean 'Resolution', 'Rejection', or 'Customer'?", "Unknown type "
         "'Resolutio'."),
        ("Cannot query field 'nam' on type 'Strategy'.", "Cannot query field 'nam' on type 'Strategy'."),
    ],
)  # fmt: skip
def test_suggestions_are_cut_from_messages(message: str, expected: str) -> None:
    assert without_suggestions(message) == expected


async def test_refused_documents_leave_no_request_text_in_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    schema = build_schema()
    context = Context(service=None, principal=Principal("t", frozenset()), request_id="req-3")  # type: ignore[arg-type]

    invalid = await schema.execute(
        f'{{ resolve(identities: [{{key: "phone_number", value: "{PHONE}"}}]) {{ statu }} }}', context_value=context
    )
    bad_variable = await schema.execute(
        "query($i: [IdentityInput!]!) { resolve(identities: $i) { status } }",
        variable_values={"i": [{"key": "phone_number", "valu": PHONE}]},
        context_value=context,
    )
    forbidden = await schema.execute(
        f'{{ resolve(identities: [{{key: "phone_number", value: "{PHONE}"}}]) {{ status }} }}', context_value=context
    )

    assert invalid.errors and invalid.errors[0].extensions == {"code": "INVALID_INPUT"}
    assert bad_variable.errors and bad_variable.errors[0].extensions == {"code": "INVALID_INPUT"}
    assert forbidden.errors and forbidden.errors[0].extensions == {"code": "FORBIDDEN"}
    assert "req-3" in caplog.text
    assert PHONE not in caplog.text
    assert PHONE[1:] not in caplog.text
