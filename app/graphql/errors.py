"""Error codes: AppErrors keep their message and carry extensions.code; anything unexpected is masked as
INTERNAL and logged with the request id (never with the values of the request)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from app.errors import AppError

logger = logging.getLogger(__name__)


def coded(error: GraphQLError, request_id: str) -> GraphQLError:
    original = error.original_error
    if isinstance(original, AppError):
        return GraphQLError(
            original.message,
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions={"code": original.code},
        )
    if error.extensions and error.extensions.get("code"):
        return error  # already coded (permission errors)
    if original is None:
        # Parse and validation errors: the document itself is wrong.
        return GraphQLError(
            error.message,
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions={"code": "INVALID_INPUT"},
        )
    # The exception's message may quote the request's values (a driver error names the conflicting property):
    # log its type and where it was raised, not what it says.
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


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            context = self.execution_context.context
            request_id = getattr(context, "request_id", "-")
            result.errors = [coded(e, request_id) for e in errors]
