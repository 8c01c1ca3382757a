"""Scope checks per field: a missing scope is a GraphQL error with code FORBIDDEN.

A customer is read data: a mutation that answers one needs identity:read as well as identity:write. The check runs
on the mutation field, before its resolver, so a token without the read scope is refused before anything is written
(a check on the customer field alone would run after the write, and its error, the field being non-null, would
null the whole mutation result: a write done, answered as a failure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from strawberry.permission import BasePermission
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

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


class CanAudit(_Scope):
    """The change feed and a customer's history."""

    scope = auth.AUDIT


class CanReadTheCustomer(_Scope):
    """On a mutation whose result is a customer (mergeProfiles, unmergeProfiles, unlinkIdentity)."""

    scope = auth.READ

    def has_permission(self, source: Any, info: strawberry.Info[Context, Any], **kwargs: Any) -> bool:
        allowed = super().has_permission(source, info, **kwargs)
        if not allowed:
            self.message = f"this operation answers a customer: it needs the {auth.READ} scope too; nothing was done"
        return allowed


class CanReadASelectedCustomer(_Scope):
    """On a mutation whose result has a `customer` field (upsertProfile, upsertProfiles, linkIdentities): needed
    only when the operation selects that field (through fragments too)."""

    scope = auth.READ

    def has_permission(self, source: Any, info: strawberry.Info[Context, Any], **kwargs: Any) -> bool:
        if not any(_selects(field.selections, "customer") for field in info.selected_fields):
            return True
        allowed = super().has_permission(source, info, **kwargs)
        if not allowed:
            self.message = (
                f"selecting customer needs the {auth.READ} scope; select profile, created and rejected instead "
                "(nothing was written)"
            )
        return allowed


def _selects(selections: Iterable[Selection], name: str) -> bool:
    """Whether a selection set selects the field `name` at its own level, directly or through a fragment."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == name:
                return True
        elif isinstance(selection, FragmentSpread | InlineFragment) and _selects(selection.selections, name):
            return True
    return False
