"""The GraphQL endpoint: strawberry's ASGI view with our context (use cases, caller, request id), a body decoder that
refuses what strawberry's would fail on, and transport refusals in the contract's error shape."""

from __future__ import annotations

import logging
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.extensions import DisableIntrospection
from strawberry.types.unset import UNSET

from app.auth import PRINCIPAL_KEY, REQUEST_ID_KEY
from app.domain.textcheck import is_unicode_text
from app.graphql.context import Context
from app.graphql.prepared import Prepared
from app.graphql.schema import Schema, build_schema

logger = logging.getLogger(__name__)

PreparedRequest = tuple[Prepared, dict[str, Any] | None]  # the document to run again, and the request's variables


class GraphQLView(GraphQL[Context, None]):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As strawberry's, but a refusal before execution (bad JSON, wrong content type, a batch) is answered with
        {"errors": [{"message", "extensions": {"code"}}]} and its HTTP status, not with plain text."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as refusal:
            response = transport_refusal(refusal, scope.get(REQUEST_ID_KEY, "-"))
        await response(scope, receive, send)

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """strawberry's, except that a plain JSON POST of a prepared document (app/graphql/prepared.py) is executed
        at once; anything else, a first sight of a document included, takes strawberry's whole path."""
        schema = self.schema
        found = None
        if isinstance(schema, Schema) and context is UNSET and root_value is UNSET:
            found = await self._prepared_request(request, schema)
        if found is None:
            return await super().run(request, context, root_value)
        assert isinstance(schema, Schema)  # found implies it
        prepared, variables = found
        sub_response = await self.get_sub_response(request)
        result = await schema.execute_prepared(prepared, variables, await self.get_context(request, sub_response))
        response_data = await self.process_result(request=request, result=result)
        return self.create_response(response_data=response_data, sub_response=sub_response)

    async def _prepared_request(self, request: Request, schema: Schema) -> PreparedRequest | None:
        """The prepared document and variables of a request strawberry would run as one plain operation: POST,
        a JSON body naming a remembered (query, operationName), no extensions, no streaming Accept header."""
        if request.method != "POST" or not len(schema.prepared):
            return None
        content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        accept = request.headers.get("accept", "")
        if content_type != "application/json" or "multipart" in accept or "event-stream" in accept:
            return None
        try:
            data = self.parse_json(await request.body())
        except HTTPException:
            return None  # strawberry's path refuses it the same way, in its own words
        if not isinstance(data, dict) or data.get("extensions") is not None:
            return None
        query, name, variables = data.get("query"), data.get("operationName"), data.get("variables")
        if not isinstance(query, str) or not isinstance(name, str | None) or not isinstance(variables, dict | None):
            return None
        prepared = schema.prepared.get(query, name)
        return None if prepared is None else (prepared, variables)

    def parse_json(self, data: str | bytes) -> Any:
        """The request body (or a query parameter) as JSON. strawberry's only catches JSONDecodeError; this also
        refuses bytes that are not UTF-8, nesting too deep to decode, a value that is neither an object nor a list (a
        batch, which strawberry then refuses), and strings that are not Unicode text (lone surrogate escapes)."""
        try:
            value = self.decode_json(data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if not isinstance(value, dict | list):
            raise HTTPException(400, "The request body must be a JSON object")
        if not is_unicode_text(value):
            raise HTTPException(400, "Strings must be Unicode text (a \\ud800-\\udfff escape must be one of a pair)")
        return value

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(
            service=request.state.service,
            principal=request.scope.get(PRINCIPAL_KEY),
            request_id=request.scope.get(REQUEST_ID_KEY, "-"),
            metrics=getattr(request.state, "metrics", None),
            feed=getattr(request.state, "feed", None),
        )


def transport_refusal(refusal: HTTPException, request_id: str) -> JSONResponse:
    """strawberry refuses with 400 (the body or the operation), 404 (GET without GraphiQL) or 405 (another method).
    Its reason goes to the client only: one names the operationName the request sent."""
    code = "NOT_FOUND" if refusal.status_code == 404 else "INVALID_INPUT"
    logger.debug("request %s: %s (HTTP %d) before execution", request_id, code, refusal.status_code)
    body = {"errors": [{"message": refusal.reason, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=refusal.status_code)


def graphql_app(*, graphiql: bool, introspection: bool) -> GraphQLView:
    schema = build_schema(extra_extensions=[] if introspection else [DisableIntrospection])
    return GraphQLView(
        schema,
        graphql_ide="graphiql" if graphiql else None,
        allow_queries_via_get=False,  # no GET execution at all: mutations never, and queries need the bearer header
        multipart_uploads_enabled=False,
    )
