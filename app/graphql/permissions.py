"""Scope checks per field: a missing scope is a GraphQL error with code FORBIDDEN."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.permission import BasePermission

from app import auth
from app.graphql.context import Context


class _Scope(BasePermission):
    scope = ""

    def has_permission(self, source: Any, info: strawberry.Info[Context, Any], **kwargs: Any) -> bool:
        principal = info.context.principal
        allowed = principal is not None and principal.may(self.scope)
        if not allowed:
            self.message = f"this operation needs the {self.scope} scope"
        return allowed

    @property
    def error_extensions(self) -> dict[str, Any]:  # type: ignore[override]
        return {"code": "FORBIDDEN"}


class CanRead(_Scope):
    scope = auth.READ


class CanWrite(_Scope):
    scope = auth.WRITE


class CanErase(_Scope):
    scope = auth.ERASE
