"""Hostile requests are refused before any resolver runs: deep nesting, alias floods, huge documents, oversized
bodies, operations over GET, batches; error messages give no schema hints; introspection and GraphiQL switch off.

Each refusal is checked by its answer and by the database: the documents carry a mutation that would have written a
profile, and none is written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from app.graphql.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tests.e2e.graphql_harness import Api, running_api, settings_with_tokens

pytestmark = pytest.mark.neo4j

ITEM = {"source": "crm", "sourceId": "C-1", "identities": [{"key": "phone_number", "value": "+14155552671"}]}
WRITE = (
    'upsertProfile(input: {source: "crm", sourceId: "C-1", identities: [{key: "phone_number", value: "+14155552671"}]})'
)
INTROSPECTION = "{ __schema { queryType { name } types { name fields { name } } } }"


async def nothing_written(driver: AsyncDriver) -> bool:
    records, _, _ = await driver.execute_query("MATCH (n) WHERE n:Profile OR n:Identity RETURN count(n) AS n")
    return bool(records[0]["n"] == 0)


def messages(body: dict[str, Any]) -> list[str]:
    return [str(e["message"]) for e in body.get("errors", [])]


async def refused(api: Api, query: str, variables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The errors of a request that must be refused as a whole: no data at all."""
    response = await api.post(query, variables, token=api.tokens.all)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("data") is None, body
    errors: list[dict[str, Any]] = body["errors"]
    assert errors
    return errors


async def test_the_write_used_below_does_write_when_allowed(api: Api, driver: AsyncDriver) -> None:
    """The control: the same mutation, sent plainly, writes a profile."""
    assert (await api.data(f"mutation {{ {WRITE} {{ created }} }}"))["upsertProfile"]["created"] is True
    assert not await nothing_written(driver)


async def test_nesting_deeper_than_the_limit_is_refused(api: Api, driver: AsyncDriver) -> None:
    levels = MAX_DEPTH + 2
    query = (
        f"mutation {{ {WRITE} {{ " + "customer { profiles { " * (levels // 2) + "id" + " } }" * (levels // 2) + " } }"
    )

    errors = await refused(api, query)

    assert any("exceeds maximum operation depth" in e["message"] for e in errors), errors
    assert {e["extensions"]["code"] for e in errors} == {"INVALID_INPUT"}
    assert await nothing_written(driver)


async def test_a_document_nested_hundreds_deep_is_refused_by_the_parser(api: Api, driver: AsyncDriver) -> None:
    query = f"mutation {{ {WRITE} {{ " + "customer { " * 400 + "id" + " }" * 400 + " } }"

    errors = await refused(api, query)

    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"
    assert "nested too deeply" in errors[0]["message"]
    assert await nothing_written(driver)


async def test_a_thousand_aliases_are_refused(api: Api, driver: AsyncDriver) -> None:
    query = (
        "mutation($i: ProfileInput!) { "
        + " ".join(f"a{n}: upsertProfile(input: $i) {{ created }}" for n in range(1000))
        + " }"
    )

    errors = await refused(api, query, {"i": ITEM})

    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"
    assert await nothing_written(driver)


async def test_aliases_over_the_limit_are_refused_even_in_a_small_document(api: Api, driver: AsyncDriver) -> None:
    query = (
        "mutation($i: ProfileInput!) { "
        + " ".join(f"a{n}: upsertProfile(input: $i) {{ created }}" for n in range(MAX_ALIASES + 1))
        + " }"
    )

    errors = await refused(api, query, {"i": ITEM})

    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"
    assert f"{MAX_ALIASES + 1} aliases found" in errors[0]["message"]
    assert await nothing_written(driver)


async def test_aliases_within_fragments_count_too(api: Api, driver: AsyncDriver) -> None:
    fragment = "fragment F on Customer { " + " ".join(f"i{n}: id" for n in range(MAX_ALIASES + 1)) + " }"
    query = f"mutation {{ {WRITE} {{ customer {{ ...F }} }} }} {fragment}"

    errors = await refused(api, query)

    assert "aliases found" in errors[0]["message"]
    assert await nothing_written(driver)


async def test_a_document_of_too_many_tokens_is_refused(api: Api, driver: AsyncDriver) -> None:
    query = f"mutation {{ {WRITE} {{ created " + "created " * MAX_TOKENS + "} }"

    errors = await refused(api, query)

    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"
    assert f"more than {MAX_TOKENS} tokens" in errors[0]["message"]
    assert await nothing_written(driver)


async def test_a_body_over_the_size_limit_is_413(api: Api, driver: AsyncDriver, settings: Settings) -> None:
    padding = "#" + "x" * settings.max_body_bytes + "\n"
    body = {"query": padding + f"mutation {{ {WRITE} {{ created }} }}"}

    response = await api.http.post("/graphql", json=body, headers={"authorization": f"Bearer {api.tokens.all}"})

    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert await nothing_written(driver)


async def test_a_chunked_body_over_the_size_limit_is_413(api: Api, driver: AsyncDriver, settings: Settings) -> None:
    """No content-length to check up front: the guard counts the bytes as they arrive."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "mutation { ' + WRITE.replace('"', '\\"').encode() + b' { created } }", "pad": "'
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = await api.http.post(
        "/graphql",
        content=chunks(),
        headers={"authorization": f"Bearer {api.tokens.all}", "content-type": "application/json"},
    )

    assert response.status_code == 413
    assert await nothing_written(driver)


async def test_operations_over_get_are_not_executed(api: Api, driver: AsyncDriver) -> None:
    mutation = await api.http.get("/graphql", params={"query": f"mutation {{ {WRITE} {{ created }} }}"})
    query = await api.http.get(
        "/graphql",
        params={"query": "{ strategy { name } }"},
        headers={"authorization": f"Bearer {api.tokens.all}"},
    )

    # strawberry with allow_queries_via_get=False: 400 for a mutation and for a query alike, nothing executed.
    assert mutation.status_code == 400
    assert "not allowed when using GET" in mutation.text
    assert query.status_code == 400
    assert "data" not in query.text
    assert await nothing_written(driver)


async def test_batched_operations_are_refused(api: Api, driver: AsyncDriver) -> None:
    response = await api.http.post(
        "/graphql",
        json=[{"query": f"mutation {{ {WRITE} {{ created }} }}"}, {"query": "{ strategy { name } }"}],
        headers={"authorization": f"Bearer {api.tokens.all}"},
    )

    assert response.status_code == 400
    assert await nothing_written(driver)


async def test_a_form_post_is_refused(api: Api, driver: AsyncDriver) -> None:
    response = await api.http.post(
        "/graphql",
        data={"query": f"mutation {{ {WRITE} {{ created }} }}"},
        headers={"authorization": f"Bearer {api.tokens.all}"},
    )

    assert response.status_code in (400, 415)
    assert await nothing_written(driver)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ strategi { name } }", None),
        ("{ resolve(identitie: []) { status } }", None),
        ('{ resolve(identities: [{key: "phone_number", valu: "+14155552671"}]) { status } }', None),
        ('{ resolve(identities: [{key: "phone_number", value: "+14155552671"}]) { statu } }', None),
        ('{ resolve(identities: [{key: "phone_number", value: "+14155552671"}]) { ...F } } fragment F on Resolutio '
         "{ status }", None),
        ("query($s: ResolutionStatu) { strategy { name } }", None),
        ("mutation($i: ProfileInput!) { upsertProfile(input: $i) { created } }",
         {"i": {"source": "crm", "sourceID": "C-1", "identities": [{"key": "phone_number", "valu": "+14155552671"}]}}),
        ("{ strategy { nam } }", None),
    ],
)  # fmt: skip
async def test_errors_never_suggest_names_of_the_schema(
    api: Api, driver: AsyncDriver, query: str, variables: dict[str, Any] | None
) -> None:
    errors = await refused(api, query, variables)

    assert all(e["extensions"]["code"] == "INVALID_INPUT" for e in errors), errors
    assert not [m for m in messages({"errors": errors}) if "Did you mean" in m or "did you mean" in m]
    assert await nothing_written(driver)


async def test_introspection_and_graphiql_are_on_by_default(api: Api) -> None:
    page = await api.http.get("/graphql", headers={"accept": "text/html"})
    schema = await api.data(INTROSPECTION, token=api.tokens.read)

    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    assert schema["__schema"]["queryType"] == {"name": "Query"}


@pytest.fixture(scope="module")
async def locked_down(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """The app as production runs it: IDGRAPH_INTROSPECTION=false, IDGRAPH_GRAPHIQL=false."""
    flags = Settings.from_env({"IDGRAPH_INTROSPECTION": "false", "IDGRAPH_GRAPHIQL": "false"})
    assert (flags.introspection, flags.graphiql) == (False, False)
    app_settings, tokens = settings_with_tokens(
        settings, tmp_path_factory.mktemp("locked-var"), introspection=flags.introspection, graphiql=flags.graphiql
    )
    async with running_api(app_settings, tokens) as api:
        yield api


async def test_with_graphiql_off_get_graphql_serves_no_ide(locked_down: Api) -> None:
    page = await locked_down.http.get("/graphql", headers={"accept": "text/html"})

    assert page.status_code == 404
    assert "graphiql" not in page.text.lower()


@pytest.mark.parametrize(
    "query",
    [
        INTROSPECTION,
        '{ __type(name: "Query") { fields { name } } }',
        "query { strategy { name } __schema { types { name } } }",
    ],
)
async def test_with_introspection_off_an_introspection_query_is_refused(
    locked_down: Api, driver: AsyncDriver, query: str
) -> None:
    errors = await refused(locked_down, query)

    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"
    assert "introspection" in errors[0]["message"].lower()


async def test_with_introspection_off_the_api_still_answers(locked_down: Api, driver: AsyncDriver) -> None:
    data = await locked_down.data("{ strategy { name } __typename }", token=locked_down.tokens.read)

    assert data == {"strategy": {"name": "Deterministic_Phone_Email_Account"}, "__typename": "Query"}
