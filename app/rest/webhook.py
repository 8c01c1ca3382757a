"""The CRM opt-out webhook: POST /webhooks/crm/erasure erases the customer the named identities resolve to.

Not behind the bearer Guard: each delivery is signed with the shared secret IDGRAPH_WEBHOOK_SECRET (app/signature.py,
the scheme the change feed's outbound delivery signs with too).

    X-Idgraph-Timestamp: <unix seconds>
    X-Idgraph-Signature: sha256=<hex of HMAC-SHA256(secret, f"{timestamp}.{raw body}")>

Refused with 401: a missing or malformed header, a wrong signature, a timestamp more than 5 minutes away from now.
Refused with 409: an event id already processed (its erasure receipt, request id "webhook:<event_id>", is the
durable record), or identities that match several customers (nothing is erased). 503 when no secret is set.

Replays of deliveries that left no receipt ("nothing to erase") are refused through replay records in Neo4j, one per
event id, shared by every replica: each delivery claims its event id in a write transaction before it does anything,
so of two replicas handed the same event at once one processes it and the other answers 409. A record is kept for
twice the signature's time window (a replay cannot be signed for longer); older ones are ignored and cleaned up.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.domain.model import ErasureReceipt, ResolutionStatus
from app.errors import AppError, Conflict, InvalidInput, NotFound, Unauthenticated
from app.jsonshape import receipt_json
from app.rest.api import (
    app_error_response,
    error_response,
    identity_pairs,
    internal_error_response,
    json_object,
    refuse_unknown,
    request_id_of,
    required_str,
)
from app.services.erasure import WEBHOOK_REQUEST_PREFIX
from app.services.identity import IdentityService
from app.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, TOLERANCE_S, verify_signature
from app.web.observability import Metrics

logger = logging.getLogger(__name__)

PATH = "/webhooks/crm/erasure"
REQUEST_PREFIX = WEBHOOK_REQUEST_PREFIX  # reserved: the use case refuses it to every other caller
ACTOR = "crm-webhook"
MAX_ATTEMPTS = 3  # resolve-then-erase rounds when the graph changes under an opt-out
REPLAY_WINDOW_S = 2 * TOLERANCE_S  # how long a replay record is kept: twice the signature's time window
MAX_EVENT_ID = 128 - len(REQUEST_PREFIX)  # the erasure request id "webhook:<event_id>" is at most 128 characters
_EVENT_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_EVENT_ID}}}")


class ReplayRecords(Protocol):
    """The replay records of processed event ids, shared by every replica (app/db/webhook_events.py on Neo4j)."""

    async def claim(self, event_id: str, *, now: datetime, expired_before: datetime) -> datetime | None: ...

    async def release(self, event_id: str, *, claimed_at: datetime) -> bool: ...

    async def delete_expired(self, *, expired_before: datetime) -> int: ...


class CrmErasureWebhook:
    def __init__(self, secret: str | None, metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.metrics = metrics
        self.clock = clock

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
        records: ReplayRecords = request.state.webhook_events
        now = datetime.fromtimestamp(self.clock(), UTC)
        expired_before = now - timedelta(seconds=REPLAY_WINDOW_S)
        # Claimed before anything is done: a concurrent delivery of the same event, to any replica, is a replay.
        claimed_at = await records.claim(event_id, now=now, expired_before=expired_before)
        if claimed_at is None:
            return "replay", _replay(event_id)
        await _clean_up(records, expired_before)
        try:
            outcome, response = await self._erase(request.state.service, event_id, pairs, reason)
        except Exception:
            await _release(records, event_id, claimed_at)  # nothing was done: a redelivery is decided afresh
            raise
        if outcome == "ambiguous":
            await _release(records, event_id, claimed_at)
        return outcome, response

    async def _erase(
        self, service: IdentityService, event_id: str, pairs: tuple[tuple[str, str], ...], reason: str
    ) -> tuple[str, Response]:
        request_id = REQUEST_PREFIX + event_id
        if await service.erasure_receipt(request_id) is not None:
            return "replay", _replay(event_id)
        # Resolved where writes go (a lagging replica must not answer "nothing to erase" for someone who is there),
        # and again when the graph changes under the erasure.
        for _ in range(MAX_ATTEMPTS):
            resolution = await service.resolve(pairs, leader=True)
            self.metrics.resolve_outcome(resolution.status.value, "webhook")
            if resolution.status is ResolutionStatus.AMBIGUOUS:
                message = (
                    f"the identities match {len(resolution.candidates)} customers; nothing was erased "
                    "(erase by profile id instead)"
                )
                return "ambiguous", error_response("CONFLICT", message)
            if resolution.customer is None:
                # Nobody holds them: suppress them all the same, so a later sync cannot create the person.
                absent = await service.suppress_absent(pairs, request_id=request_id, reason=reason, actor=ACTOR)
                if absent is None:
                    continue  # a profile took one of them meanwhile: resolve again and erase its customer
                return "nothing_to_erase", _nothing(event_id, absent)
            try:
                receipt = await service.erase(
                    resolution.customer.id, request_id=request_id, reason=reason, actor=ACTOR, webhook=True
                )
            except NotFound:  # erased by someone else between the lookup and the erasure: look again
                continue
            return "erased", JSONResponse({"status": "erased", "event_id": event_id, "receipt": receipt_json(receipt)})
        raise Conflict(
            "the identities kept changing while the opt-out was processed; nothing more was done, redeliver it"
        )


async def _release(records: ReplayRecords, event_id: str, claimed_at: datetime) -> None:
    """Best effort: when the database refuses, the record stays and a redelivery within the window is a replay."""
    try:
        await records.release(event_id, claimed_at=claimed_at)
    except AppError as error:
        logger.warning("replay record of a webhook event kept: release failed (%s)", error.code)


async def _clean_up(records: ReplayRecords, expired_before: datetime) -> None:
    """Delete a batch of expired replay records; a failure only leaves them for the next delivery."""
    try:
        await records.delete_expired(expired_before=expired_before)
    except AppError as error:
        logger.warning("expired webhook replay records not cleaned up (%s)", error.code)


def _nothing(event_id: str, receipt: ErasureReceipt) -> Response:
    return JSONResponse({"status": "nothing to erase", "event_id": event_id, "receipt": receipt_json(receipt)})


def _replay(event_id: str) -> Response:
    return error_response("CONFLICT", f"event {event_id} was already processed (replay refused)")


def webhook_routes(secret: str | None, metrics: Metrics) -> list[Route]:
    return [Route(PATH, CrmErasureWebhook(secret, metrics).handle, methods=["POST"])]
