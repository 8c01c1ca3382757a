"""Prepared documents (app/graphql/prepared.py): a document that validated is run again without strawberry's
pipeline. Each case below is sent twice to the real app: the first time through strawberry's whole path, the second
through the prepared one, and both must answer alike: status, headers, body, and what the app logs.

Every case's document carries a comment of its own, so its first request is the document's first sight.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app import auth
from app.config import Settings
from app.db.driver import AsyncDriver
from app.errors import DatabaseUnavailable
from app.graphql.prepared import PreparedDocuments
from app.graphql.schema import Schema
from app.services.identity import IdentityService
from app.web.app import create_app
from tests.e2e.graphql_harness import Api, Lifespan, settings_with_tokens
from tests.e2e.test_graphql_api import CUSTOMER, RESOLVE, UPSERT, account, email, phone, profile_input

pytestmark = pytest.mark.neo4j

REQUEST_ID = "prepared-test-0001"
_cases = itertools.count()


@dataclass
class Served:
    api: Api
    prepared: PreparedDocuments
    no_scope: str  # a valid token without any scope
    logs: list[logging.LogRecord] = field(default_factory=list)


def prepared_documents(app: Starlette) -> PreparedDocuments:
    for route in app.routes:  # the API's route, not the GraphiQL page's GET route before it
        if getattr(route, "path", None) == "/graphql" and hasattr(getattr(route, "endpoint", None), "schema"):
            schema = route.endpoint.schema  # type: ignore[attr-defined]
            assert isinstance(schema, Schema)
            return schema.prepared
    raise AssertionError("no /graphql route")


@pytest.fixture(scope="module")
async def served(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    var = tmp_path_factory.mktemp("prepared-var")
    app_settings, tokens = settings_with_tokens(settings, var)
    no_scope = auth.add_token(Path(app_settings.tokens_file), "nobody", [])
    app = create_app(app_settings)
    async with Lifespan(app) as running:
        transport = httpx.ASGITransport(app=running)
        async with httpx.AsyncClient(transport=transport, base_url="http://idgraph.test", timeout=30.0) as http:
            yield Served(Api(http, tokens), prepared_documents(app), no_scope)


@pytest.fixture
async def app(served: Served, driver: AsyncDriver) -> Served:
    """The module's app on a clean graph (the `driver` fixture empties it before each test)."""
    return served


def first_sight(document: str) -> str:
    return f"# case {next(_cases)}\n{document}"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    logs: list[tuple[str, int, str]]


async def ask(
    app: Served,
    caplog: pytest.LogCaptureFixture,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    operation_name: str | None = None,
) -> Answer:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    if operation_name is not None:
        body["operationName"] = operation_name
    headers = {"authorization": f"Bearer {token or app.api.tokens.all}", "x-request-id": REQUEST_ID}
    caplog.clear()
    response = await app.api.http.post("/graphql", json=body, headers=headers)
    logs = [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name != "idgraph.access"]
    kept = {k: v for k, v in response.headers.items() if k in ("content-type", "content-length", "x-request-id")}
    return Answer(response.status_code, kept, response.json(), logs)


async def twice(
    app: Served, caplog: pytest.LogCaptureFixture, query: str, variables: dict[str, Any] | None = None, **options: Any
) -> tuple[Answer, int]:
    """The answers to the same request sent twice must be equal; returns the first answer, and how many of the two
    requests took the prepared path."""
    caplog.set_level(logging.DEBUG)
    hits = app.prepared.hits
    first = await ask(app, caplog, query, variables, **options)
    second = await ask(app, caplog, query, variables, **options)
    assert second == first
    return first, app.prepared.hits - hits


async def seeded(app: Served) -> str:
    result = await app.api.data(UPSERT, {"input": profile_input("crm", "prep-1", phone(), email(), account("A-1"))})
    return str(result["upsertProfile"]["profile"]["id"])


# -- the path is taken -------------------------------------------------------------------------------------------


async def test_a_document_is_prepared_once_it_validated_and_the_next_request_takes_that_path(
    app: Served, caplog: pytest.LogCaptureFixture
) -> None:
    await seeded(app)
    answer, prepared = await twice(app, caplog, first_sight(RESOLVE), {"identities": [phone()]})
    assert prepared == 1
    assert answer.status == 200
    assert answer.body["data"]["resolve"]["status"] == "FOUND"
    assert answer.headers["content-type"] == "application/json"


# -- answers ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "status"),
    [
        pytest.param({"identities": [phone()]}, "FOUND", id="found"),
        pytest.param({"identities": [phone("+1 212 555 0100")]}, "NOT_FOUND", id="not-found"),
        pytest.param({"identities": [phone(), account("A-2")]}, "AMBIGUOUS", id="ambiguous"),
    ],
)
async def test_resolutions_are_the_same_on_both_paths(
    app: Served, caplog: pytest.LogCaptureFixture, variables: dict[str, Any], status: str
) -> None:
    await seeded(app)
    await app.api.data(UPSERT, {"input": profile_input("ivr", "prep-2", account("A-2"))})
    answer, prepared = await twice(app, caplog, first_sight(RESOLVE), variables)
    assert prepared == 1
    assert answer.body["data"]["resolve"]["status"] == status


async def test_fragments_aliases_directives_and_typename_are_the_same_on_both_paths(
    app: Served, caplog: pytest.LogCaptureFixture
) -> None:
    await seeded(app)
    document = f"""
    query Desk($identities: [IdentityInput!]!, $full: Boolean!) {{
      first: resolve(identities: $identities) {{ ...Found }}
      again: resolve(identities: $identities) {{ status customer @include(if: $full) {{ {CUSTOMER} }} }}
      me {{ name scopes __typename }}
    }}
    fragment Found on Resolution {{ __typename status assurance customer {{ id skills profiles {{ id }} }} }}
    """
    answer, prepared = await twice(app, caplog, first_sight(document), {"identities": [email()], "full": True})
    assert prepared == 1
    assert answer.body["data"]["first"]["__typename"] == "Resolution"
    assert answer.body["data"]["again"]["customer"]["profiles"]


async def test_the_operation_named_in_the_request_is_the_one_run_on_both_paths(
    app: Served, caplog: pytest.LogCaptureFixture
) -> None:
    document = first_sight("query A { me { name } }\nquery B { strategy { name } }")
    named, prepared = await twice(app, caplog, document, operation_name="B")
    assert prepared == 1
    assert named.body == {"data": {"strategy": {"name": "Deterministic_Phone_Email_Account"}}}
    other, prepared = await twice(app, caplog, document, operation_name="A")
    assert prepared == 1
    assert other.body == {"data": {"me": {"name": "steward"}}}
    unnamed, _ = await twice(app, caplog, document)  # whatever strawberry makes of it, the prepared path agrees
    assert unnamed.status in (200, 400)


async def test_an_operation_name_the_document_lacks_is_refused_on_strawberry_path_every_time(
    app: Served, caplog: pytest.LogCaptureFixture
) -> None:
    answer, prepared = await twice(app, caplog, first_sight("query A { me { name } }"), operation_name="Nope")
    assert prepared == 0
    assert answer.status == 400


async def test_introspection_is_the_same_on_both_paths(app: Served, caplog: pytest.LogCaptureFixture) -> None:
    answer, prepared = await twice(app, caplog, first_sight("{ __schema { queryType { name } } }"))
    assert prepared == 1
    assert answer.body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


# -- errors ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        pytest.param({"identities": [phone("not a phone")]}, "INVALID_INPUT", id="bad-phone"),
        pytest.param({}, "INVALID_INPUT", id="missing-variable"),
        pytest.param({"identities": "+14155552671"}, "INVALID_INPUT", id="variable-of-the-wrong-shape"),
        pytest.param({"identities": [{"key": "phone_number"}]}, "INVALID_INPUT", id="incomplete-input-object"),
        pytest.param({"identities": [phone()], "token": "forged"}, "INVALID_INPUT", id="bad-consistency-token"),
    ],
)
async def test_refusals_are_the_same_on_both_paths(
    app: Served, caplog: pytest.LogCaptureFixture, variables: dict[str, Any], code: str
) -> None:
    answer, prepared = await twice(app, caplog, first_sight(RESOLVE), variables)
    assert prepared == 1
    assert [e["extensions"]["code"] for e in answer.body["errors"]] == [code]


async def test_a_missing_scope_is_forbidden_on_both_paths(app: Served, caplog: pytest.LogCaptureFixture) -> None:
    answer, prepared = await twice(app, caplog, first_sight(RESOLVE), {"identities": [phone()]}, token=app.no_scope)
    assert prepared == 1
    assert answer.body["errors"][0]["extensions"] == {"code": "FORBIDDEN"}
    assert answer.body["data"] is None


async def test_a_profile_that_does_not_exist_is_the_same_on_both_paths(
    app: Served, caplog: pytest.LogCaptureFixture
) -> None:
    customer = first_sight("query($id: ID!) { customer(profileId: $id) { id } profile(id: $id) { id } }")
    answer, prepared = await twice(app, caplog, customer, {"id": "no-such-profile"})
    assert prepared == 1
    assert answer.body == {"data": {"customer": None, "profile": None}}
    merge = first_sight("mutation($a: ID!, $b: ID!) { mergeProfiles(sourceProfileId: $a, targetProfileId: $b) { id } }")
    answer, prepared = await twice(app, caplog, merge, {"a": "no-such-profile", "b": "nor-this-one"})
    assert prepared == 1
    assert answer.body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        pytest.param(lambda: RuntimeError("exploded on +14155552671"), "INTERNAL", id="unexpected"),
        pytest.param(
            lambda: DatabaseUnavailable("the identity database is unavailable"), "DATABASE_UNAVAILABLE", id="db-down"
        ),
    ],
)
async def test_failures_of_the_service_are_the_same_on_both_paths(
    app: Served,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    failure: Callable[[], Exception],
    code: str,
) -> None:
    async def fail(self: IdentityService, *args: object, **kwargs: object) -> None:
        raise failure()

    monkeypatch.setattr(IdentityService, "resolve", fail)
    answer, prepared = await twice(app, caplog, first_sight(RESOLVE), {"identities": [phone()]})
    assert prepared == 1
    [error] = answer.body["errors"]
    assert error["extensions"]["code"] == code
    assert "+14155552671" not in str(answer.body)
    if code == "INTERNAL":
        assert error["extensions"]["requestId"] == REQUEST_ID
        assert any(level == logging.ERROR for _, level, _ in answer.logs), answer.logs


@pytest.mark.parametrize(
    "document",
    [
        pytest.param("{ me { name }", id="syntax-error"),
        pytest.param("{ me { nmae } }", id="unknown-field"),
        pytest.param("query($x: Strin) { me { name } }", id="unknown-type"),
        pytest.param("{ " + " ".join(f"a{n}: me {{ name }}" for n in range(40)) + " }", id="too-many-aliases"),
        pytest.param("mutation { me { name } }", id="field-of-another-root"),
    ],
)
async def test_a_document_that_fails_validation_is_never_prepared(
    app: Served, caplog: pytest.LogCaptureFixture, document: str
) -> None:
    answer, prepared = await twice(app, caplog, first_sight(document))
    assert prepared == 0
    assert answer.body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


# -- writes ----------------------------------------------------------------------------------------------------------


async def test_a_mutation_runs_on_the_prepared_path_too(app: Served) -> None:
    document = first_sight(UPSERT)
    variables = {"input": profile_input("crm", "prep-write", phone())}
    hits = app.prepared.hits
    first = (await app.api.data(document, variables))["upsertProfile"]
    second = (await app.api.data(document, variables))["upsertProfile"]
    assert app.prepared.hits - hits == 1
    assert (first["created"], second["created"]) == (True, False)  # idempotent on (source, sourceId)
    assert first["profile"]["id"] == second["profile"]["id"]


# -- the documents kept ------------------------------------------------------------------------------------------


def test_prepared_documents_keep_the_most_recently_used() -> None:
    from graphql import parse

    from app.graphql.prepared import Prepared

    documents = PreparedDocuments(maxsize=2)
    for name in ("a", "b"):
        documents.remember(f"{{ {name} }}", None, Prepared(parse(f"{{ {name} }}"), None))
    assert documents.get("{ a }", None) is not None  # now b is the least recently used
    documents.remember("{ c }", None, Prepared(parse("{ c }"), None))
    assert documents.get("{ b }", None) is None
    assert documents.get("{ a }", "A") is None  # another operation name is another entry
    assert (len(documents), documents.hits) == (2, 1)
