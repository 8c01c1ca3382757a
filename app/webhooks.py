"""The CRM opt-out webhook: POST /webhooks/crm/erasure erases the customer the named identities resolve to.

Not behind the bearer Guard: each delivery is signed with the shared secret IDGRAPH_WEBHOOK_SECRET.

    X-Idgraph-Timestamp: <unix seconds>
    X-Idgraph-Signature: sha256=<hex of HMAC-SHA256(secret, f"{timestamp}.{raw body}")>

Refused with 401: a missing or malformed header, a wrong signature, a timestamp more than 5 minutes away from now.
Refused with 409: an event id already processed (its erasure receipt, request id "webhook:<event_id>", is the
durable record), or identities that match several customers (nothing is erased). 503 when no secret is set.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.domain.model import ResolutionStatus
from app.errors import AppError, InvalidInput, NotFound, Unauthenticated
from app.observability import Metrics
from app.rest import (
    app_error_response,
    error_response,
    identity_pairs,
    internal_error_response,
    json_object,
    receipt_json,
    refuse_unknown,
    request_id_of,
    required_str,
)
from app.services import IdentityService

PATH = "/webhooks/crm/erasure"
SIGNATURE_HEADER = "x-idgraph-signature"
TIMESTAMP_HEADER = "x-idgraph-timestamp"
TOLERANCE_S = 300
REQUEST_PREFIX = "webhook:"
ACTOR = "crm-webhook"
MAX_EVENT_ID = 128 - len(REQUEST_PREFIX)  # the erasure request id "webhook:<event_id>" is at most 128 characters
_EVENT_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_EVENT_ID}}}")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Idgraph-Signature value of a delivery: "sha256=" + hex HMAC-SHA256 over b"<timestamp>." + body."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str,
    *,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance_s: float = TOLERANCE_S,
) -> None:
    """Raise Unauthenticated unless the delivery is signed with the secret and its timestamp is fresh."""
    if not timestamp or not signature:
        raise Unauthenticated("unsigned request: X-Idgraph-Timestamp and X-Idgraph-Signature are required")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Unauthenticated("X-Idgraph-Timestamp must be whole unix seconds")
    scheme, _, given = signature.partition("=")
    if scheme.strip().lower() != "sha256" or not given:
        raise Unauthenticated("X-Idgraph-Signature must read sha256=<hex>")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), f"sha256={given.strip().lower()}".encode()):
        raise Unauthenticated("bad signature")
    if abs(now - int(timestamp)) > tolerance_s:
        raise Unauthenticated(f"X-Idgraph-Timestamp is more than {tolerance_s:g} seconds away from the server's clock")


class RecentEvents:
    """Event ids seen in the last `ttl_s` seconds, in this process: refuses replays of deliveries that left no
    erasure receipt ("nothing to erase"). The signature's time window bounds how long a replay can be sent."""

    def __init__(self, ttl_s: float = 2 * TOLERANCE_S, limit: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._ttl = ttl_s
        self._limit = limit

    def seen(self, event_id: str, now: float) -> bool:
        self._expire(now)
        return event_id in self._seen

    def add(self, event_id: str, now: float) -> None:
        self._seen[event_id] = now
        self._seen.move_to_end(event_id)
        self._expire(now)

    def discard(self, event_id: str) -> None:
        self._seen.pop(event_id, None)

    def _expire(self, now: float) -> None:
        while self._seen and (len(self._seen) > self._limit or next(iter(self._seen.values())) < now - self._ttl):
            self._seen.popitem(last=False)


class CrmErasureWebhook:
    def __init__(self, secret: str | None, metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.metrics = metrics
        self.clock = clock
        self.recent = RecentEvents()

    async def handle(self, request: Request) -> Response:
        request_id = request_id_of(request)
        if not self.secret:
            self.metrics.webhook_event("not_configured")
            return error_response("NOT_CONFIGURED", "webhook not configured: set IDGRAPH_WEBHOOK_SECRET")
        body = await request.body()  # outside the try: over the size limit, the app answers 413
        try:
            verify_signature(
                self.secret,
                timestamp=request.headers.get(TIMESTAMP_HEADER),
                signature=request.headers.get(SIGNATURE_HEADER),
                body=body,
                now=self.clock(),
            )
        except Unauthenticated as error:
            self.metrics.webhook_event("unauthenticated")
            refused = app_error_response(error, request_id)
            refused.headers["www-authenticate"] = 'Signature realm="idgraph-webhook"'
            return refused
        try:
            outcome, response = await self._process(request, body)
        except AppError as error:
            self.metrics.webhook_event(error.code.lower())
            return app_error_response(error, request_id)
        except Exception as error:
            self.metrics.webhook_event("internal")
            return internal_error_response(error, request_id)
        self.metrics.webhook_event(outcome)
        return response

    async def _process(self, request: Request, body: bytes) -> tuple[str, Response]:
        data = json_object(body)
        refuse_unknown(data, {"event_id", "identities", "reason"})
        event_id = required_str(data, "event_id")
        if not _EVENT_ID.fullmatch(event_id):
            raise InvalidInput(f"event_id must be 1-{MAX_EVENT_ID} letters, digits or _.:-")
        reason = required_str(data, "reason").strip()
        if not reason:
            raise InvalidInput("reason must not be empty")
        pairs = identity_pairs(data.get("identities"), allow_type=True)
        now = self.clock()
        if self.recent.seen(event_id, now):
            return "replay", _replay(event_id)
        # Claimed before the first await: a concurrent delivery of the same event in this process is a replay.
        self.recent.add(event_id, now)
        try:
            outcome, response = await self._erase(request.state.service, event_id, pairs, reason)
        except BaseException:
            self.recent.discard(event_id)  # nothing was done: a redelivery is decided afresh
            raise
        if outcome == "ambiguous":
            self.recent.discard(event_id)
        return outcome, response

    async def _erase(
        self, service: IdentityService, event_id: str, pairs: tuple[tuple[str, str], ...], reason: str
    ) -> tuple[str, Response]:
        request_id = REQUEST_PREFIX + event_id
        if await service.erasure_receipt(request_id) is not None:
            return "replay", _replay(event_id)
        resolution = await service.resolve(pairs)
        self.metrics.resolve_outcome(resolution.status.value, "webhook")
        if resolution.status is ResolutionStatus.AMBIGUOUS:
            message = (
                f"the identities match {len(resolution.candidates)} customers; nothing was erased "
                "(erase by profile id instead)"
            )
            return "ambiguous", error_response("CONFLICT", message)
        if resolution.customer is None:
            return "nothing_to_erase", _nothing(event_id)
        try:
            receipt = await service.erase(resolution.customer.id, request_id=request_id, reason=reason, actor=ACTOR)
        except NotFound:  # erased by someone else between the lookup and the erasure
            return "nothing_to_erase", _nothing(event_id)
        return "erased", JSONResponse({"status": "erased", "event_id": event_id, "receipt": receipt_json(receipt)})


def _nothing(event_id: str) -> Response:
    return JSONResponse({"status": "nothing to erase", "event_id": event_id, "receipt": None})


def _replay(event_id: str) -> Response:
    return error_response("CONFLICT", f"event {event_id} was already processed (replay refused)")


def webhook_routes(secret: str | None, metrics: Metrics) -> list[Route]:
    return [Route(PATH, CrmErasureWebhook(secret, metrics).handle, methods=["POST"])]
