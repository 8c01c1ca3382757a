"""Prepared operations: a document that strawberry parsed and validated without error is remembered by its text and
operation name, so the next request sending the same text runs straight through graphql-core's executor.

Agent desktops and routing flows send the same few documents over and over. strawberry's pipeline around the
executor (the schema extensions' hooks, the operation checks, the HTTP view's request data) costs about as much CPU
as the execution itself (docs/benchmarks.md); for a document already known to be valid none of it can change the
outcome: parsing and validation depend on the text and the schema only. What the pipeline does after execution is
done here the same way: the errors are logged (Schema.process_errors) and coded (ErrorCodes). The resolvers are
strawberry's, scope checks included. tests/e2e/test_graphql_prepared.py holds both paths to the same answers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import DocumentNode
from strawberry.extensions import SchemaExtension

# What strawberry's ExecutionContext keeps the request's operationName under (its `operation_name` falls back to
# the document's first operation). Read with getattr: if a strawberry release renames it, nothing is remembered and
# every request takes strawberry's path (slower, never wrong); test_graphql_prepared.py notices.
_PROVIDED_NAME = "_provided_operation_name"
_MISSING = object()


@dataclass(frozen=True)
class Prepared:
    document: DocumentNode
    operation_name: str | None  # the operation strawberry executed for this request: the one to execute again


class PreparedDocuments:
    """The documents that validated, by (text, operationName as sent), least recently used first out."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[str, str | None], Prepared] = OrderedDict()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: str, operation_name: str | None) -> Prepared | None:
        found = self._entries.get((query, operation_name))
        if found is not None:
            self._entries.move_to_end((query, operation_name))
            self.hits += 1
        return found

    def remember(self, query: str, operation_name: str | None, prepared: Prepared) -> None:
        self._entries[(query, operation_name)] = prepared
        self._entries.move_to_end((query, operation_name))
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)


class RememberValidated(SchemaExtension):
    """Remembers, in the schema's PreparedDocuments, each document that passed validation (every rule, the query
    limits and the introspection switch included) as it was sent."""

    def __init__(self, documents: PreparedDocuments) -> None:
        super().__init__()
        self.documents = documents

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        provided = getattr(context, _PROVIDED_NAME, _MISSING)
        errors = context.pre_execution_errors
        if (
            errors is not None
            and len(errors) == 0
            and context.query is not None
            and context.graphql_document is not None
            and (provided is None or isinstance(provided, str))
        ):
            self.documents.remember(context.query, provided, Prepared(context.graphql_document, context.operation_name))
