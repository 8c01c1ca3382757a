"""Query and Mutation: each resolver is one use-case call; the schema carries the hardening extensions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from inspect import isawaitable
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError, execute
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult

from app.domain import model
from app.domain.changes import Audit
from app.errors import InvalidInput
from app.graphql import feed, inputs, outputs, stewardship
from app.graphql.context import Context
from app.graphql.errors import ErrorCodes, coded, log_refusals, request_id_of
from app.graphql.permissions import (
    CanAudit,
    CanErase,
    CanRead,
    CanReadASelectedCustomer,
    CanReadTheCustomer,
    CanWrite,
)
from app.graphql.prepared import Prepared, PreparedDocuments, RememberValidated

Info = strawberry.Info[Context, Any]

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000
MAX_BATCH = 500


def _pairs(identities: list[inputs.IdentityInput]) -> tuple[tuple[str, str], ...]:
    return tuple((i.key, i.value) for i in identities)


def _attributes(value: JSON | None) -> dict[str, model.Scalar]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("attributes must be a flat JSON object of scalars")
    return dict(value)


def _profile_input(item: inputs.ProfileInput) -> model.ProfileInput:
    return model.ProfileInput(
        source=item.source,
        identities=_pairs(item.identities),
        source_id=item.source_id,
        profile_id=str(item.profile_id) if item.profile_id is not None else None,
        attributes=_attributes(item.attributes),
    )


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[CanRead], description="Who is this? Never writes.")
    async def resolve(
        self, info: Info, identities: list[inputs.IdentityInput], consistency_token: str | None = None
    ) -> outputs.Resolution:
        async with info.context.db_calls:
            resolution = await info.context.service.resolve(_pairs(identities), consistency=consistency_token)
        if info.context.metrics is not None:
            info.context.metrics.resolve_outcome(resolution.status.value, "graphql")
        return outputs.Resolution.of(resolution)

    @strawberry.field(description="The caller's token name and scopes; needs no scope.")
    def me(self, info: Info) -> outputs.Me:
        principal = info.context.principal
        return outputs.Me(
            name=principal.name if principal else "anonymous",
            scopes=sorted(principal.scopes) if principal else [],
        )

    @strawberry.field(permission_classes=[CanRead], description="The customer a profile belongs to.")
    async def customer(
        self, info: Info, profile_id: strawberry.ID, consistency_token: str | None = None
    ) -> outputs.Customer | None:
        async with info.context.db_calls:
            customer = await info.context.service.customer(str(profile_id), consistency=consistency_token)
        return outputs.Customer.of(customer) if customer else None

    @strawberry.field(permission_classes=[CanRead])
    async def profile(self, info: Info, id: strawberry.ID) -> outputs.Profile | None:
        async with info.context.db_calls:
            customer = await info.context.service.customer(str(id))
        if customer is None:
            return None
        return next(outputs.Profile.of(p, customer) for p in customer.profiles if p.id == str(id))

    @strawberry.field(permission_classes=[CanRead], description="Why two profiles are one customer.")
    async def explain(self, info: Info, profile_a: strawberry.ID, profile_b: strawberry.ID) -> stewardship.Explanation:
        async with info.context.db_calls:
            explanation = await info.context.service.explain(str(profile_a), str(profile_b))
        return stewardship.Explanation.of(explanation)

    @strawberry.field(permission_classes=[CanErase], description="What eraseCustomer would delete; deletes nothing.")
    async def erasure_preview(
        self, info: Info, profile_id: strawberry.ID, whole_customer: bool = True
    ) -> stewardship.ErasurePreview:
        async with info.context.db_calls:
            plan = await info.context.service.erasure_plan(str(profile_id), whole_customer=whole_customer)
        return stewardship.ErasurePreview.of(plan)

    @strawberry.field(permission_classes=[CanErase])
    async def erasure_receipt(self, info: Info, request_id: strawberry.ID) -> stewardship.ErasureReceipt | None:
        async with info.context.db_calls:
            receipt = await info.context.service.erasure_receipt(str(request_id))
        return stewardship.ErasureReceipt.of(receipt) if receipt else None

    @strawberry.field(permission_classes=[CanRead], description="Run a value through the strategy; stores nothing.")
    def normalize(self, info: Info, key: str, value: str) -> stewardship.Normalized:
        service = info.context.service
        result = service.normalize(key, value)
        if isinstance(result, model.Rejection):
            return stewardship.Normalized(
                key=key,
                raw=value,
                value=None,
                rule=None,
                rule_version=None,
                blocked=False,
                rejection=outputs.Rejection.of(result),
            )
        return stewardship.Normalized(
            key=key,
            raw=value,
            value=result.value,
            rule=result.rule.value,
            rule_version=result.rule_version,
            blocked=service.strategy.is_blocked(result.identity),
            rejection=None,
        )

    @strawberry.field(permission_classes=[CanRead], description="The active resolution strategy.")
    def strategy(self, info: Info) -> stewardship.Strategy:
        s = info.context.service.strategy
        return stewardship.Strategy(
            name=s.name,
            default_region=s.default_region,
            attributes=[
                stewardship.StrategyAttribute(
                    name=a.name,
                    kind=a.kind.value,
                    normalization=a.normalization.value,
                    max_per_customer=a.max_per_customer,
                )
                for a in s.attributes
            ],
            max_profiles_per_identity=s.protections.max_profiles_per_identity,
            blocked_value_count=len(s.protections.blocked_values),
            fallback_skill=s.routing.fallback_skill,
            routing_rules=[
                stewardship.RoutingRule(
                    skill=r.skill, attribute=r.attribute, equals=outputs.as_json(r.equals), within_days=r.within_days
                )
                for r in s.routing.rules
            ],
        )

    changes: feed.ChangePage = strawberry.field(
        resolver=feed.changes, permission_classes=[CanAudit], description=feed.CHANGES_DESCRIPTION
    )
    customer_history: feed.CustomerHistory | None = strawberry.field(
        resolver=feed.customer_history, permission_classes=[CanAudit], description=feed.HISTORY_DESCRIPTION
    )


def _actor(info: Info) -> str:
    principal = info.context.principal
    return principal.name if principal else "anonymous"


def _request_id(info: Info) -> str | None:
    """The HTTP request id the guard gave the request (app/web/guard.py), for the change log."""
    request_id = info.context.request_id
    return request_id if request_id and request_id != "-" else None


def _audit(info: Info) -> Audit:
    return Audit(_actor(info), _request_id(info))


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[CanWrite, CanReadASelectedCustomer])
    async def upsert_profile(self, info: Info, input: inputs.ProfileInput) -> outputs.UpsertResult:
        return outputs.UpsertResult.of(
            await info.context.service.upsert_profile(_profile_input(input), audit=_audit(info))
        )

    @strawberry.mutation(
        permission_classes=[CanWrite, CanReadASelectedCustomer], description=f"At most {MAX_BATCH} inputs per call."
    )
    async def upsert_profiles(self, info: Info, inputs: list[inputs.ProfileInput]) -> list[outputs.UpsertResult]:
        if len(inputs) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} profiles per upsertProfiles call")
        results = await info.context.service.upsert_profiles([_profile_input(i) for i in inputs], audit=_audit(info))
        return [outputs.UpsertResult.of(r) for r in results]

    @strawberry.mutation(
        permission_classes=[CanWrite, CanReadASelectedCustomer],
        description="Link new identities to an existing profile.",
    )
    async def link_identities(
        self,
        info: Info,
        profile_id: strawberry.ID,
        identities: list[inputs.IdentityInput],
        # Named `source` in GraphQL only: strawberry's permission extension takes a `source` argument of its own.
        source_system: Annotated[str, strawberry.argument(name="source")] = "api",
    ) -> outputs.UpsertResult:
        item = model.ProfileInput(source=source_system, identities=_pairs(identities), profile_id=str(profile_id))
        return outputs.UpsertResult.of(await info.context.service.upsert_profile(item, audit=_audit(info)))

    @strawberry.mutation(
        permission_classes=[CanWrite, CanReadTheCustomer],
        description="Merge source into target (reversible). Refused with CONFLICT when it would give one customer "
        "two values of a key allowed once, unless force is true. Answers the customer: needs identity:read too.",
    )
    async def merge_profiles(
        self,
        info: Info,
        source_profile_id: strawberry.ID,
        target_profile_id: strawberry.ID,
        reason: str | None = None,
        force: bool = False,
    ) -> outputs.Customer:
        customer = await info.context.service.merge_profiles(
            str(source_profile_id),
            str(target_profile_id),
            actor=_actor(info),
            reason=reason or "",
            force=force,
            request_id=_request_id(info),
        )
        return outputs.Customer.of(customer)

    @strawberry.mutation(
        permission_classes=[CanWrite, CanReadTheCustomer],
        description="Undo a merge; returns the customers after, so it needs identity:read too.",
    )
    async def unmerge_profiles(
        self, info: Info, source_profile_id: strawberry.ID, target_profile_id: strawberry.ID
    ) -> list[outputs.Customer]:
        customers = await info.context.service.unmerge_profiles(
            str(source_profile_id), str(target_profile_id), actor=_actor(info), request_id=_request_id(info)
        )
        return [outputs.Customer.of(c) for c in customers]

    @strawberry.mutation(
        permission_classes=[CanWrite, CanReadTheCustomer],
        description="Detach one identity from a profile; returns the customer after, so it needs identity:read too.",
    )
    async def unlink_identity(
        self, info: Info, profile_id: strawberry.ID, identity: inputs.IdentityInput
    ) -> outputs.Customer | None:
        customer = await info.context.service.unlink_identity(
            str(profile_id), identity.key, identity.value, actor=_actor(info), request_id=_request_id(info)
        )
        return outputs.Customer.of(customer) if customer else None

    @strawberry.mutation(
        permission_classes=[CanErase],
        description="Cascade-delete the customer of a profile; idempotent on requestId.",
    )
    async def erase_customer(
        self, info: Info, profile_id: strawberry.ID, request_id: strawberry.ID, reason: str
    ) -> stewardship.ErasureReceipt:
        receipt = await info.context.service.erase(
            str(profile_id), request_id=str(request_id), reason=reason, actor=_actor(info)
        )
        return stewardship.ErasureReceipt.of(receipt)

    @strawberry.mutation(permission_classes=[CanErase], description="Delete one profile only; idempotent on requestId.")
    async def erase_profile(
        self, info: Info, profile_id: strawberry.ID, request_id: strawberry.ID, reason: str
    ) -> stewardship.ErasureReceipt:
        receipt = await info.context.service.erase(
            str(profile_id), request_id=str(request_id), reason=reason, actor=_actor(info), whole_customer=False
        )
        return stewardship.ErasureReceipt.of(receipt)


class Schema(strawberry.Schema):
    """strawberry's schema, minus its error logging (strawberry logs each error's text with the document's lines
    and the exception's message, which quote the request's phone numbers, emails and account ids), plus the
    prepared documents and their short path through execution (app/graphql/prepared.py)."""

    def __init__(self, *, prepared: PreparedDocuments, **options: Any) -> None:
        super().__init__(**options)
        self.prepared = prepared

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        log_refusals(errors, request_id_of(execution_context.context if execution_context else None))

    async def execute_prepared(
        self, prepared: Prepared, variables: dict[str, Any] | None, context: Context
    ) -> ExecutionResult:
        """What execute() answers for a document that validated before: graphql-core's executor with strawberry's
        resolvers, the operation strawberry chose, then the errors logged (process_errors) and coded (ErrorCodes)
        as on strawberry's path, an exception escaping the executor included."""
        try:
            result = execute(
                self._schema,
                prepared.document,
                variable_values=variables,
                context_value=context,
                operation_name=prepared.operation_name,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # strawberry's own, as it passes it
            )
            if isawaitable(result):
                result = await result
            data, errors = result.data, result.errors
        except Exception as exc:  # strawberry's execute makes an error of the result of it too
            data, errors = None, [exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)]
        if not errors:
            return ExecutionResult(data=data, errors=None)
        request_id = request_id_of(context)
        log_refusals(errors, request_id)
        return ExecutionResult(data=data, errors=[coded(e, request_id) for e in errors])


# Parsed and validated documents are cached by their text (a few hundred, least recently used first out): parsing
# plus validation cost more than the database lookup of a resolve (measured with pyinstrument: docs/benchmarks.md).
# A document that validated is then run on the prepared path (app/graphql/prepared.py), which skips both; these
# caches serve strawberry's path: a document refused again and again, or sent with `extensions`. The depth and alias
# limits are validation rules; built once here, they stay the same classes from request to request, so cached
# validations match.
DOCUMENT_CACHE_SIZE = 256


class DocumentCache(ParserCache):
    """strawberry's ParserCache, except that a document that does not parse is left for strawberry's own parse,
    which reports the syntax error like any other refusal (an error raised in this hook would bypass ErrorCodes)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            with contextlib.suppress(GraphQLError):
                context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield


LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


def build_schema(extra_extensions: Sequence[Any] = ()) -> Schema:
    prepared = PreparedDocuments(maxsize=DOCUMENT_CACHE_SIZE)
    return Schema(
        prepared=prepared,
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(disable_field_suggestions=True),
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),  # before parsing: a parse option
            lambda: AddValidationRules(list(LIMIT_RULES)),
            lambda: DocumentCache(maxsize=DOCUMENT_CACHE_SIZE),
            lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
            ErrorCodes,
            *extra_extensions,
            lambda: RememberValidated(prepared),  # last: it remembers what every validation rule let through
        ],
    )
