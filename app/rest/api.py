"""REST compatibility for middleware written against the contact-centre platform idgraph replaces.

    POST   /api/v2/customer-data-platform/identities            push identities + attributes   identity:write
    POST   /api/v2/customer-data-platform/identities/merge      merge source into target       identity:write+read
    DELETE /api/v2/customer-data-platform/identities/{id}       cascade erase of the customer  identity:erase
    POST   /api/v2/customer-data-platform/identities/resolve    who is this? (never writes)    identity:read
    GET    /api/v2/customer-data-platform/identities/{id}       the customer of a profile      identity:read
    GET    /api/v2/customer-data-platform/changes               the change feed (?after=&limit=) identity:audit

The Guard (app/web/app.py) has already checked the bearer token; each endpoint checks its scope and makes one call
of the same IdentityService method the GraphQL resolver calls. Answers have the shapes of app/jsonshape.py
(snake_case, times RFC 3339 UTC with "Z"); bodies are checked here, so that messages name their snake_case fields;
errors have the GraphQL shape {"errors": [{"message", "extensions": {"code"}}]} with the HTTP status of the code.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app import auth
from app.auth import PRINCIPAL_KEY, REQUEST_ID_KEY, Principal
from app.domain import model
from app.domain.changes import Audit
from app.domain.textcheck import is_unicode_text
from app.domain.validation import SNAKE_CASE, check_id, check_profile_input
from app.errors import AppError, Forbidden, InvalidInput, NotFound, Unauthenticated
from app.jsonshape import Json, change_json, customer_json, receipt_json, resolution_json, upsert_json
from app.services.changes import DEFAULT_LIMIT, MAX_LIMIT, ChangeFeed, change_types
from app.services.identity import IdentityService
from app.web.observability import Metrics

logger = logging.getLogger(__name__)

# Where the Guard leaves the caller and the request id in the ASGI scope (the same keys app.graphql.view uses;
# a test keeps them equal, and this module must not import strawberry).

BASE = "/api/v2/customer-data-platform/identities"
CHANGES = "/api/v2/customer-data-platform/changes"
CHANGES_PARAMS = ("after", "limit", "type", "profile_id")
DEFAULT_SOURCE = "api"
DEFAULT_DELETE_REASON = "REST delete request"
RESERVED_REQUEST_PREFIX = "webhook:"  # request ids of the CRM webhook's erasures

HTTP_STATUS = {
    "INVALID_INPUT": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "SUPPRESSED": 422,  # well-formed, but every value belongs to an erased person: retrying will not help
    "PAYLOAD_TOO_LARGE": 413,
    "DATABASE_UNAVAILABLE": 503,
    "TIMEOUT": 504,
    "INTERNAL": 500,
    "NOT_CONFIGURED": 503,  # the CRM webhook without IDGRAPH_WEBHOOK_SECRET
}

# -- errors -----------------------------------------------------------------------------------------------------


def error_response(code: str, message: str, *, extensions: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"errors": [{"message": message, "extensions": {"code": code, **(extensions or {})}}]}
    return JSONResponse(body, status_code=HTTP_STATUS.get(code, 500))


def app_error_response(error: AppError, request_id: str) -> JSONResponse:
    if error.code == "INTERNAL":
        return internal_error_response(error, request_id)
    return error_response(error.code, error.message)


def internal_error_response(error: BaseException, request_id: str) -> JSONResponse:
    """Masked: the message of an unexpected exception may quote request values. Logged by type and place only."""
    logger.error(
        "unexpected %s (request %s)\n%s",
        type(error).__name__,
        request_id,
        "".join(traceback.format_tb(error.__traceback__)),
    )
    return error_response(
        "INTERNAL", f"Unexpected error (request id {request_id}).", extensions={"requestId": request_id}
    )


def request_id_of(request: Request) -> str:
    value = request.scope.get(REQUEST_ID_KEY)
    return value if isinstance(value, str) else "-"


# -- request bodies ---------------------------------------------------------------------------------------------


def json_object(body: bytes) -> Json:
    """The body as a JSON object of Unicode text; INVALID_INPUT otherwise."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8 (UnicodeDecodeError), or nested too deep
        raise InvalidInput("the body must be a JSON object (it is not valid JSON)") from None
    if not isinstance(value, dict):
        raise InvalidInput("the body must be a JSON object")
    if not is_unicode_text(value):
        raise InvalidInput("strings must be Unicode text (a \\ud800-\\udfff escape must be one of a pair)")
    return value


def refuse_unknown(body: Mapping[str, object], allowed: set[str], where: str = "") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"unknown field {where}{unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def optional_str(body: Mapping[str, object], name: str, *, numbers: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    return value


def required_str(body: Mapping[str, object], name: str) -> str:
    value = optional_str(body, name)
    if value is None:
        raise InvalidInput(f"{name} is required")
    return value


def required_id(body: Mapping[str, object], name: str) -> str:
    value = required_str(body, name)
    check_id(value, name)  # checked here too, so that the message names the snake_case field
    return value


def identity_pairs(value: object, *, allow_type: bool) -> tuple[tuple[str, str], ...]:
    """[{"key", "value"(, "type")}] as (key, raw value) pairs. "type" is accepted and ignored: the strategy
    decides whether a key is primary or secondary."""
    if not isinstance(value, list):
        raise InvalidInput("identities must be a list of {key, value} objects")
    allowed = {"key", "value", "type"} if allow_type else {"key", "value"}
    pairs: list[tuple[str, str]] = []
    for n, item in enumerate(value):
        where = f"identities[{n}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where} must be an object with key and value")
        refuse_unknown(item, allowed, f"in {where}: ")
        key, raw = item.get("key"), item.get("value")
        if not isinstance(key, str):
            raise InvalidInput(f"{where}.key must be a string")
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str):
            raise InvalidInput(f"{where}.value must be a string")
        if "type" in item and not isinstance(item["type"], str | None):
            raise InvalidInput(f"{where}.type must be a string")
        pairs.append((key, raw))
    return tuple(pairs)


def profile_input(body: Json) -> model.ProfileInput:
    refuse_unknown(body, {"identities", "attributes", "source", "source_id", "profile_id"})
    attributes = body.get("attributes")
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        raise InvalidInput("attributes must be a flat JSON object of scalars")
    item = model.ProfileInput(
        source=optional_str(body, "source") or DEFAULT_SOURCE,
        identities=identity_pairs(body.get("identities", []), allow_type=True),
        source_id=optional_str(body, "source_id", numbers=True),
        profile_id=optional_str(body, "profile_id"),
        attributes=attributes,
    )
    check_profile_input(item, SNAKE_CASE)  # here, so that messages name the body's fields (the use case checks again)
    return item


# -- endpoints --------------------------------------------------------------------------------------------------

Handler = Callable[[Request, Principal, bytes], Awaitable[Response]]


def _guarded(scope: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Scope check, body read, and the error mapping around one endpoint."""

    async def endpoint(request: Request) -> Response:
        request_id = request_id_of(request)
        principal = request.scope.get(PRINCIPAL_KEY)
        if not isinstance(principal, Principal):  # the Guard lets no request without a token reach here
            return app_error_response(Unauthenticated("a valid bearer token is required"), request_id)
        if not principal.may(scope):
            return app_error_response(Forbidden(f"this operation needs the {scope} scope"), request_id)
        # Outside the try: a body over the limit raises the Guard's BodyTooLarge, which the app answers with 413.
        body = await request.body() if request.method in ("POST", "PUT", "PATCH") else b""
        try:
            return await handler(request, principal, body)
        except AppError as error:
            return app_error_response(error, request_id)
        except Exception as error:
            return internal_error_response(error, request_id)

    return endpoint


class RestApi:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def routes(self) -> list[Route]:
        return [
            Route(BASE, _guarded(auth.WRITE, self.push_identities), methods=["POST"]),
            Route(f"{BASE}/merge", _guarded(auth.WRITE, self.merge), methods=["POST"]),
            Route(f"{BASE}/resolve", _guarded(auth.READ, self.resolve), methods=["POST"]),
            Route(f"{BASE}/{{profile_id}}", _guarded(auth.ERASE, self.delete), methods=["DELETE"]),
            Route(f"{BASE}/{{profile_id}}", _guarded(auth.READ, self.customer), methods=["GET"]),
            Route(CHANGES, _guarded(auth.AUDIT, self.changes), methods=["GET"]),
        ]

    async def push_identities(self, request: Request, principal: Principal, body: bytes) -> Response:
        """Upsert a profile: 201 when created, 200 when updated; the customer only for a token with identity:read."""
        item = profile_input(json_object(body))
        result = await _service(request).upsert_profile(item, audit=Audit(principal.name, request_id_of(request)))
        answer = upsert_json(result, with_customer=principal.may(auth.READ))
        return JSONResponse(answer, status_code=201 if result.created else 200)

    async def merge(self, request: Request, principal: Principal, body: bytes) -> Response:
        if not principal.may(auth.READ):  # the answer is the customer: read data
            raise Forbidden(f"the merge answers the customer: it needs the {auth.READ} scope too; nothing was merged")
        data = json_object(body)
        refuse_unknown(data, {"source_profile_id", "target_profile_id", "reason", "force"})
        force = data.get("force", False)
        if not isinstance(force, bool):
            raise InvalidInput("force must be true or false")
        customer = await _service(request).merge_profiles(
            required_id(data, "source_profile_id"),
            required_id(data, "target_profile_id"),
            actor=principal.name,
            reason=optional_str(data, "reason") or "",
            force=force,
            request_id=request_id_of(request),
        )
        return JSONResponse(customer_json(customer))

    async def delete(self, request: Request, principal: Principal, body: bytes) -> Response:
        """Cascade-erase the profile's customer. Idempotent on the Idempotency-Key header (the erasure request id)."""
        key = request.headers.get("idempotency-key")
        if key is None:
            request_id = f"rest-{uuid.uuid4().hex}"
        else:
            check_id(key, "Idempotency-Key")
            if key.startswith(RESERVED_REQUEST_PREFIX):
                raise InvalidInput(f"Idempotency-Key must not start with {RESERVED_REQUEST_PREFIX!r} (reserved)")
            request_id = key
        reason = request.query_params.get("reason") or DEFAULT_DELETE_REASON
        profile_id = request.path_params["profile_id"]
        check_id(profile_id, "profile_id")
        receipt = await _service(request).erase(profile_id, request_id=request_id, reason=reason, actor=principal.name)
        return JSONResponse(receipt_json(receipt))

    async def resolve(self, request: Request, principal: Principal, body: bytes) -> Response:
        """Who is this? 200 with status FOUND, NOT_FOUND or AMBIGUOUS; never writes."""
        data = json_object(body)
        refuse_unknown(data, {"identities", "consistency_token"})
        resolution = await _service(request).resolve(
            identity_pairs(data.get("identities"), allow_type=True),
            consistency=optional_str(data, "consistency_token"),
        )
        self.metrics.resolve_outcome(resolution.status.value, "rest")
        return JSONResponse(resolution_json(resolution))

    async def customer(self, request: Request, principal: Principal, body: bytes) -> Response:
        profile_id = request.path_params["profile_id"]
        check_id(profile_id, "profile_id")
        customer = await _service(request).customer(profile_id)
        if customer is None:
            raise NotFound(f"no profile with id {profile_id}")
        return JSONResponse(customer_json(customer))

    async def changes(self, request: Request, principal: Principal, body: bytes) -> Response:
        """A page of the change feed: {"events": [...], "next_cursor"}. `type` may be repeated or comma-separated."""
        params = request.query_params
        unknown = sorted(set(params) - set(CHANGES_PARAMS))
        if unknown:
            raise InvalidInput(f"unknown query parameter {unknown[0]!r}; allowed: {', '.join(CHANGES_PARAMS)}")
        limit_text = params.get("limit") or str(DEFAULT_LIMIT)
        if not limit_text.isascii() or not limit_text.isdigit() or len(limit_text) > 6:
            raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT} (got {limit_text[:20]!r})")
        names = [name for value in params.getlist("type") for name in value.split(",") if name.strip()]
        feed: ChangeFeed = request.state.feed
        page = await feed.page(
            after=params.get("after"),
            limit=int(limit_text),
            types=change_types(names, "type"),
            profile_id=params.get("profile_id"),
            profile_id_name="profile_id",
        )
        return JSONResponse({"events": [change_json(e) for e in page.events], "next_cursor": page.next_cursor})


def _service(request: Request) -> IdentityService:
    service: IdentityService = request.state.service
    return service


def rest_routes(metrics: Metrics) -> list[Route]:
    return RestApi(metrics).routes()
