"""Error codes: AppErrors keep their message and carry extensions.code; anything unexpected is masked as
INTERNAL and logged with the request id (never with the values of the request).

Nothing here logs an error's message or the document: a GraphQL error's text quotes the request (the document's
lines, a variable's value), and requests carry phone numbers, emails and account ids.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from app.errors import AppError

logger = logging.getLogger(__name__)

# graphql-core's hints ("Did you mean 'identities'?") name parts of the schema; with introspection off they would
# leak it one guess at a time, so they are cut from every message (strawberry's own switch only covers fields).
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def without_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


def code_of(error: GraphQLError) -> str:
    """The code a client will see for this error (before masking)."""
    original = error.original_error
    if isinstance(original, AppError):
        return original.code
    if error.extensions and error.extensions.get("code"):
        return str(error.extensions["code"])
    if original is None or isinstance(original, GraphQLError):
        return "INVALID_INPUT"
    return "INTERNAL"


def coded(error: GraphQLError, request_id: str) -> GraphQLError:
    original = error.original_error
    code = code_of(error)
    if isinstance(original, AppError):
        return GraphQLError(
            original.message, error.nodes, error.source, error.positions, error.path, extensions={"code": code}
        )
    if error.extensions and error.extensions.get("code"):
        return error  # already coded (permission errors)
    if code == "INVALID_INPUT":
        # Parse, validation and variable-coercion errors (graphql-core raises those as GraphQLErrors): the
        # document or its variables are wrong.
        return GraphQLError(
            without_suggestions(error.message),
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions={"code": code},
        )
    # The exception's message may quote the request's values (a driver error names the conflicting property):
    # log its type and where it was raised, not what it says.
    assert original is not None
    logger.error(
        "unexpected %s in %s (request %s)\n%s",
        type(original).__name__,
        ".".join(map(str, error.path or [])),
        request_id,
        "".join(traceback.format_tb(original.__traceback__)),
    )
    return GraphQLError(
        f"Unexpected error (request id {request_id}).",
        error.nodes,
        error.source,
        error.positions,
        error.path,
        extensions={"code": "INTERNAL", "requestId": request_id},
    )


def log_refusals(errors: Sequence[GraphQLError], request_id: str) -> None:
    """What a client got wrong, by code and place, for operators; never the message (it quotes the request).

    Unexpected errors are logged once, with their traceback, when they are masked (`coded`)."""
    refused = [(code_of(e), ".".join(map(str, e.path or [])) or "-") for e in errors]
    refused = [(code, path) for code, path in refused if code != "INTERNAL"]
    if refused:
        logger.debug("request %s: %s", request_id, ", ".join(f"{code} at {path}" for code, path in refused))


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            request_id = request_id_of(self.execution_context.context)
            result.errors = [coded(e, request_id) for e in errors]


def request_id_of(context: Any) -> str:
    return str(getattr(context, "request_id", "-"))
