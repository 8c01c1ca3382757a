"""Where a resolve's CPU goes, layer by layer: the app served in this process (no HTTP, no client), the same lookup
sent as GraphQL and through the REST adapter, in alternating rounds.

    .venv/bin/python -m bench.resolve_cpu --profiles 10000 --rounds 1000

The HTTP latency benchmark sees three processes on the same cores; this one sees only the service's own thread, so
its figures are CPU seconds (time.thread_time, which a wait for Neo4j does not advance) rather than wall time. Each
layer is timed by wrapping its entry point in this process (the app's code is not changed): the access-log and
metrics middleware, the auth guard, the GraphQL HTTP view, strawberry's operation pipeline (which a document already
validated skips: app/graphql/prepared.py), execution before the resolver starts and after it returns, the service's
resolve, and the repository's read (driver and record decoding). A layer's
figure is its own time, the layers inside it taken out. The REST adapter answers the same question from the same
service without GraphQL: the difference between the two totals is what the GraphQL layer costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import strawberry.http.async_base_view as strawberry_view
import strawberry.schema.schema as strawberry_schema
from starlette.types import ASGIApp, Message

import app.db.repository as repository
import app.graphql.schema as graphql_schema
import app.graphql.view as graphql_view
import app.services.identity as services
import app.web.app as web_app
import app.web.guard as web
import app.web.observability as observability
from app.auth import add_token
from app.config import Settings
from bench import http_latency
from bench.harness import RESOLVE, scratch_database, table, write_section

REST_RESOLVE = "/api/v2/customer-data-platform/identities/resolve"
BLOCK = 100  # resolves of one kind in a row


class Clock:
    """CPU seconds of this thread spent inside each wrapped entry point, and how often each was entered."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.marks: dict[str, float] = {}
        self.active = False  # only the GraphQL rounds are broken down (the REST ones pass the same entry points)
        self.originals: list[tuple[Any, str, Any]] = []

    def restore(self) -> None:
        for owner, attribute, original in reversed(self.originals):
            setattr(owner, attribute, original)
        self.originals.clear()

    def wrap(self, owner: Any, attribute: str, label: str) -> None:
        original = getattr(owner, attribute)
        self.originals.append((owner, attribute, original))

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            self.marks[f"{label}:start"] = started
            try:
                return await original(*args, **kwargs)
            finally:
                ended = time.thread_time()
                self.marks[f"{label}:end"] = ended
                if self.active:
                    self.seconds[label] += ended - started

        setattr(owner, attribute, timed)

    def wrap_execute(self, owner: Any, attribute: str) -> None:
        """An execution entry point (strawberry's Schema.execute, or the prepared path's Schema.execute_prepared),
        split at the service call: the time before the resolver reaches the service, and the time after the service
        returned (result types, field completion, errors)."""
        original = getattr(owner, attribute)
        self.originals.append((owner, attribute, original))

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return await original(*args, **kwargs)
            finally:
                ended = time.thread_time()
                if self.active:
                    self.seconds[attribute] += ended - started
                    self.seconds["execute before the service"] += self.marks["service:start"] - started
                    self.seconds["execute after the service"] += ended - self.marks["service:end"]

        setattr(owner, attribute, timed)


@contextmanager
def instrumented() -> Iterator[Clock]:
    """A Clock wrapped around the entry points of a resolve's layers, unwrapped again on the way out."""
    clock = Clock()
    try:
        instrument(clock)
        yield clock
    finally:
        clock.restore()


def instrument(clock: Clock) -> None:
    clock.wrap(observability.Observability, "__call__", "observability")
    clock.wrap(web.Guard, "__call__", "guard")
    clock.wrap(graphql_view.GraphQLView, "__call__", "view")
    clock.wrap(strawberry_view.AsyncBaseHTTPView, "execute_operation", "operation")
    clock.wrap_execute(strawberry_schema.Schema, "execute")
    clock.wrap_execute(graphql_schema.Schema, "execute_prepared")
    clock.wrap(services.IdentityService, "resolve", "service")
    clock.wrap(repository.Neo4jRepository, "read_identities", "read")


@asynccontextmanager
async def running(app: ASGIApp) -> AsyncIterator[dict[str, Any]]:
    """The app's lifespan (start-up and shutdown) driven by hand; yields the state it sets for requests."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope: dict[str, Any] = {"type": "lifespan", "state": {}, "asgi": {"version": "3.0"}}
    task: asyncio.Task[None] = asyncio.create_task(app(scope, inbox.get, outbox.put))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"the app did not start: {started.get('message', started['type'])}")
    try:
        yield scope["state"]
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def post(app: ASGIApp, state: dict[str, Any], path: str, payload: object, token: str) -> tuple[int, bytes]:
    """One POST through the ASGI app, as uvicorn would hand it over."""
    body = json.dumps(payload).encode()
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": dict(state),
    }  # fmt: skip
    messages: list[Message] = []
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])


# The layers of a GraphQL resolve, outermost first: (label, its own time = this entry point minus the next one).
GRAPHQL_LAYERS = (
    ("access log and metrics middleware", "observability", "guard"),
    ("auth guard and routing", "guard", "view"),
)


def rows_of(clock: Clock, total: float, requests: int) -> list[tuple[str, float]]:
    def per(label: str) -> float:
        return clock.seconds[label] / requests

    rows = [(name, per(outer) - per(inner)) for name, outer, inner in GRAPHQL_LAYERS]
    dispatch = per("operation") - per("execute")  # strawberry's path only: a document's first sight
    executing = per("execute") + per("execute_prepared")
    rows.append(("GraphQL HTTP view (body, context, response)", per("view") - executing - dispatch))
    rows.append(("strawberry's operation pipeline (first sight of a document only)", dispatch))
    rows.append(("execution before the resolver calls the service", per("execute before the service")))
    rows.append(("execution after the service (types, completion)", per("execute after the service")))
    rows.append(("service and domain (normalization, survivorship, routing)", per("service") - per("read")))
    rows.append(("repository read: driver, Neo4j I/O callbacks, record decoding", per("read")))
    rows.append(("outside the app (ASGI plumbing of this benchmark)", total / requests - per("observability")))
    return rows


async def measure(uri: str, args: argparse.Namespace) -> str:
    with instrumented() as clock, tempfile.TemporaryDirectory() as var:
        key = "idgraph-benchmark-erasure-key-0123456789"  # 32 characters at least
        env = {"NEO4J_URI": uri, "IDGRAPH_VAR_DIR": var, "IDGRAPH_ERASURE_KEY": key}
        settings = Settings.from_env(env)
        token = add_token(Path(var) / "tokens.json", "bench", ["identity:read"])
        async with http_latency.graph(uri, args.profiles) as g:
            app = web_app.create_app(settings)
            async with running(app) as state:
                keys = g.keys

                def graphql(n: int) -> tuple[str, object]:
                    key = keys[n % len(keys)]
                    return "/graphql", {"query": RESOLVE, "variables": {"key": key.key, "value": key.value}}

                def rest(n: int) -> tuple[str, object]:
                    key = keys[n % len(keys)]
                    return REST_RESOLVE, {"identities": [{"key": key.key, "value": key.value}]}

                async def rounds(make: Callable[[int], tuple[str, object]], count: int, offset: int) -> float:
                    started = time.thread_time()
                    for n in range(count):
                        status, body = await post(app, state, *make(offset + n), token)
                        if status != 200 or b'"errors"' in body:
                            raise SystemExit(f"resolve failed: HTTP {status} {body[:200]!r}")
                    return time.thread_time() - started

                await rounds(graphql, args.warmup, 0)
                await rounds(rest, args.warmup, 0)
                totals = {"graphql": 0.0, "rest": 0.0}
                for start in range(0, args.rounds, BLOCK):  # alternating blocks: the noise falls on both alike
                    count = min(BLOCK, args.rounds - start)
                    clock.active = True
                    totals["graphql"] += await rounds(graphql, count, start)
                    clock.active = False
                    totals["rest"] += await rounds(rest, count, start)
    per_graphql = totals["graphql"] / args.rounds
    per_rest = totals["rest"] / args.rounds
    rows = [[name, f"{seconds * 1e6:,.0f}"] for name, seconds in rows_of(clock, totals["graphql"], args.rounds)]
    rows.append(["**GraphQL resolve, in all**", f"**{per_graphql * 1e6:,.0f}**"])
    rows.append(["the same resolve through the REST adapter, in all", f"{per_rest * 1e6:,.0f}"])
    return (
        f"{args.profiles:,} generated profiles in a scratch Neo4j; the app served in the benchmark's process, "
        f"{args.rounds:,} GraphQL resolves and {args.rounds:,} REST resolves of the same known phone numbers in "
        f"alternating blocks of {BLOCK}, after {args.warmup:,} untimed ones of each. CPU microseconds of the serving "
        "thread per request (waiting for Neo4j does not count, nor does the work of the Neo4j process).\n\n"
        + table(rows, ["layer", "CPU us per request"])
        + f"\n\nGraphQL / REST, CPU per request: **{per_graphql / per_rest:.2f}x** "
        f"({(per_graphql - per_rest) * 1e6:,.0f} us more for the GraphQL layer).\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=10_000, help="profiles of the graph (10000)")
    parser.add_argument("--rounds", type=int, default=1000, help="timed resolves of each kind (1000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed resolves of each kind first (200)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    with scratch_database("resolve-cpu") as uri:
        import uvloop  # the loop `idgraph serve` runs on

        body = uvloop.run(measure(uri, args))
    print(body)
    if not args.no_write:
        command = f".venv/bin/python -m bench.resolve_cpu --profiles {args.profiles} --rounds {args.rounds}"
        write_section("resolve-cpu", "Where a resolve's CPU goes, layer by layer", command, body)


if __name__ == "__main__":
    main()
