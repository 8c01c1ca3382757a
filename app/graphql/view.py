"""The GraphQL endpoint: strawberry's ASGI view with our context (use cases, caller, request id)."""

from __future__ import annotations

from typing import Any

from strawberry.asgi import GraphQL
from strawberry.extensions import DisableIntrospection

from app.auth import PRINCIPAL_KEY, REQUEST_ID_KEY
from app.graphql.context import Context
from app.graphql.schema import build_schema


class GraphQLView(GraphQL[Context, None]):
    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(
            service=request.state.service,
            principal=request.scope.get(PRINCIPAL_KEY),
            request_id=request.scope.get(REQUEST_ID_KEY, "-"),
            metrics=getattr(request.state, "metrics", None),
        )


def graphql_app(*, graphiql: bool, introspection: bool) -> GraphQLView:
    schema = build_schema(extra_extensions=[] if introspection else [DisableIntrospection])
    return GraphQLView(
        schema,
        graphql_ide="graphiql" if graphiql else None,
        allow_queries_via_get=False,  # no GET execution at all: mutations never, and queries need the bearer header
        multipart_uploads_enabled=False,
    )
