"""GraphQL types for data stewards and compliance officers: erasure receipts and previews, explanations, the
strategy and the normalization preview."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.domain import model
from app.graphql.outputs import Identity, IdentityLink, MergeEdge, Rejection


@strawberry.type(description="Proof of an erasure; it holds no personal data.")
class ErasureReceipt:
    request_id: strawberry.ID
    status: str
    profiles_deleted: int
    identities_deleted: int
    requested_by: str
    reason: str
    at: datetime
    suppressed: int = strawberry.field(description="Erased values added to the suppression list (as keyed hashes).")

    @classmethod
    def of(cls, receipt: model.ErasureReceipt) -> ErasureReceipt:
        return cls(
            request_id=strawberry.ID(receipt.request_id),
            status=receipt.status,
            profiles_deleted=receipt.profiles_deleted,
            identities_deleted=receipt.identities_deleted,
            requested_by=receipt.requested_by,
            reason=receipt.reason,
            at=receipt.at,
            suppressed=receipt.suppressed,
        )


@strawberry.type(description="What an erasure would delete, without deleting anything.")
class ErasurePreview:
    profile_ids: list[strawberry.ID]
    identities: list[Identity] = strawberry.field(description="Deleted: no other profile holds them.")
    kept_identities: list[Identity] = strawberry.field(description="Kept: other customers still hold them.")

    @classmethod
    def of(cls, plan: model.ErasurePlan) -> ErasurePreview:
        return cls(
            profile_ids=[strawberry.ID(p) for p in plan.profile_ids],
            identities=[Identity.key_only(k) for k in plan.identities],
            kept_identities=[Identity.key_only(k) for k in plan.kept_identities],
        )


@strawberry.type(description="One hop between two profiles: a shared identity or a merge edge.")
class ExplanationStep:
    from_profile_id: strawberry.ID
    to_profile_id: strawberry.ID
    via: str = strawberry.field(description="IDENTITY or MERGE")
    identity: Identity | None
    from_link: IdentityLink | None
    to_link: IdentityLink | None
    merge: MergeEdge | None


@strawberry.type(description="Why two profiles are (or are not) one customer: the shortest chain between them.")
class Explanation:
    profile_ids: list[strawberry.ID]
    connected: bool
    steps: list[ExplanationStep]
    cut_by: list[Identity] = strawberry.field(
        default_factory=list,
        description="When not connected: contested identities (up to 10) a profile of each side holds; they would "
        "have joined the two, but their holders hold too many values of a max_per_customer key.",
    )

    @classmethod
    def of(cls, explanation: model.Explanation) -> Explanation:
        return cls(
            profile_ids=[strawberry.ID(p) for p in explanation.profile_ids],
            connected=explanation.connected,
            cut_by=[Identity.of(i) for i in explanation.cut_by],
            steps=[
                ExplanationStep(
                    from_profile_id=strawberry.ID(s.from_profile_id),
                    to_profile_id=strawberry.ID(s.to_profile_id),
                    via=s.via,
                    identity=Identity.key_only(s.identity) if s.identity else None,
                    from_link=IdentityLink.of(s.from_link) if s.from_link else None,
                    to_link=IdentityLink.of(s.to_link) if s.to_link else None,
                    merge=MergeEdge.of(s.merge) if s.merge else None,
                )
                for s in explanation.steps
            ],
        )


@strawberry.type(description="A value run through the strategy's normalization, without storing anything.")
class Normalized:
    key: str
    raw: str
    value: str | None
    rule: str | None
    rule_version: str | None
    blocked: bool
    rejection: Rejection | None


@strawberry.type
class StrategyAttribute:
    name: str
    kind: str
    normalization: str
    max_per_customer: int | None


@strawberry.type
class RoutingRule:
    skill: str
    attribute: str
    equals: JSON | None
    within_days: int | None


@strawberry.type(description="The active resolution strategy (blocked values are not shown).")
class Strategy:
    name: str
    default_region: str
    attributes: list[StrategyAttribute]
    max_profiles_per_identity: int
    blocked_value_count: int
    fallback_skill: str
    routing_rules: list[RoutingRule]
