"""/metrics and the access log over HTTP: the right counters with bounded labels, and no personal data."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.db.driver import AsyncDriver
from tests.conftest import free_port
from tests.e2e.rest_harness import BASE, WEBHOOK, Tokens, app_settings, bearer, serving, signed

pytestmark = pytest.mark.neo4j

PHONE_RAW = "(415) 555-2671"
PHONE = "+14155552671"
EMAIL = "Metrics.Person@Example.com"
PERSONAL = (PHONE_RAW, PHONE, "4155552671", EMAIL, EMAIL.lower())


@dataclass
class Client:
    http: httpx.AsyncClient
    tokens: Tokens

    async def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of /metrics, keyed by (sample name, labels)."""
        text = await self.metrics_text()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    async def metrics_text(self) -> str:
        response = await self.http.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return response.text


@pytest.fixture(scope="module")
def metrics_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Tokens]:
    return app_settings(settings, tmp_path_factory.mktemp("metrics"))


@pytest.fixture
async def client(driver: AsyncDriver, metrics_settings: tuple[Settings, Tokens]) -> AsyncIterator[Client]:
    app_config, tokens = metrics_settings
    async with serving(app_config) as http:
        yield Client(http, tokens)


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


async def exercise(client: Client) -> str:
    """A few requests of every kind; returns the id of the profile it erased."""
    writer = bearer(client.tokens.all)
    identities = [{"key": "phone_number", "value": PHONE_RAW}, {"key": "email_address", "value": EMAIL}]
    pushed = await client.http.post(BASE, json={"identities": identities}, headers=writer)
    assert pushed.status_code == 201, pushed.text
    profile_id: str = pushed.json()["profile"]["id"]
    for search in ({"key": "phone_number", "value": PHONE_RAW}, {"key": "email_address", "value": "no@example.org"}):
        found = await client.http.post(f"{BASE}/resolve", json={"identities": [search]}, headers=writer)
        assert found.status_code == 200, found.text
    assert (await client.http.post(BASE, json={"identities": identities})).status_code == 401
    graphql = {"query": "query WhoIsThis { strategy { name } }", "operationName": "WhoIsThis"}
    assert (await client.http.post("/graphql", json=graphql, headers=writer)).status_code == 200
    unnamed = {"query": "{ strategy { name } }"}
    assert (await client.http.post("/graphql", json=unnamed, headers=writer)).status_code == 200
    assert (await client.http.post("/graphql", json=unnamed)).status_code == 401
    raw, headers = signed({"event_id": "m-1", "identities": [{"key": "email_address", "value": EMAIL}], "reason": "x"})
    assert (await client.http.post(WEBHOOK, content=raw, headers=headers)).status_code == 200
    erased = await client.http.delete(f"{BASE}/{profile_id}", params={"reason": "secret query text"}, headers=writer)
    assert erased.status_code == 404  # the webhook erased it already
    return profile_id


async def test_metrics_count_requests_by_route_template_method_and_status(client: Client) -> None:
    profile_id = await exercise(client)
    samples = await client.samples()

    requests = "idgraph_http_requests_total"
    assert samples[(requests, labels(route=BASE, method="POST", status="201"))] == 1
    assert samples[(requests, labels(route=BASE, method="POST", status="401"))] == 1
    assert samples[(requests, labels(route=f"{BASE}/resolve", method="POST", status="200"))] == 2
    assert samples[(requests, labels(route=f"{BASE}/{{profile_id}}", method="DELETE", status="404"))] == 1
    assert samples[(requests, labels(route=WEBHOOK, method="POST", status="200"))] == 1
    assert samples[(requests, labels(route="/graphql", method="POST", status="200"))] == 2
    latency = "idgraph_http_request_duration_seconds_count"
    assert samples[(latency, labels(route=f"{BASE}/resolve", method="POST", status="200"))] == 2
    assert not any(profile_id in dict(key).get("route", "") for _, key in samples)


async def test_metrics_count_graphql_operations_resolve_outcomes_and_webhook_events(client: Client) -> None:
    await exercise(client)
    samples = await client.samples()

    operations = "idgraph_graphql_operations_total"
    assert samples[(operations, labels(operation="WhoIsThis", outcome="ok"))] == 1
    assert samples[(operations, labels(operation="strategy", outcome="ok"))] == 1
    assert samples[(operations, labels(operation="unknown", outcome="UNAUTHENTICATED"))] == 1
    resolves = "idgraph_resolve_outcomes_total"
    assert samples[(resolves, labels(status="FOUND", interface="rest"))] == 1
    assert samples[(resolves, labels(status="NOT_FOUND", interface="rest"))] == 1
    assert samples[(resolves, labels(status="FOUND", interface="webhook"))] == 1
    assert samples[("idgraph_webhook_events_total", labels(outcome="erased"))] == 1


async def test_metrics_and_access_logs_hold_no_personal_data(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):  # every logger, not only the access log
        await exercise(client)
    text = await client.metrics_text()
    for value in PERSONAL:
        assert value not in text
    access = [r for r in caplog.records if r.name == "idgraph.access"]
    assert len(access) == 9  # one line per request of exercise()
    logged = "\n".join(r.getMessage() for r in access)
    for value in (*PERSONAL, "secret", "reason="):
        assert value not in logged
    assert f"route={BASE}/{{profile_id}}" in logged
    assert "operation=WhoIsThis outcome=ok" in logged
    assert all(r.__dict__["request_id"] not in ("", "-") for r in access)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for value in PERSONAL:
        assert value not in everything


async def test_the_access_log_carries_the_request_id_the_response_names(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="idgraph.access"):
        response = await client.http.get("/healthz", headers={"x-request-id": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    [record] = [r for r in caplog.records if r.name == "idgraph.access"]
    assert record.getMessage().startswith("method=GET route=/healthz status=200 duration_ms=")
    assert record.__dict__["request_id"] == "trace-abc-123"


async def test_an_unmatched_path_is_counted_without_its_text(client: Client) -> None:
    assert (await client.http.get("/no/such/john.doe@example.com")).status_code == 404
    text = await client.metrics_text()
    assert "john.doe" not in text
    assert 'route="unmatched"' in text


async def test_database_errors_are_counted_by_code(metrics_settings: tuple[Settings, Tokens]) -> None:
    app_config, tokens = metrics_settings
    async with serving(replace(app_config, neo4j_uri=f"bolt://127.0.0.1:{free_port()}")) as http:
        body = {"identities": [{"key": "email_address", "value": EMAIL}]}
        assert (await http.post(f"{BASE}/resolve", json=body, headers=bearer(tokens.read))).status_code == 503
        text = (await http.get("/metrics")).text
    assert 'idgraph_database_errors_total{code="DATABASE_UNAVAILABLE"} 1.0' in text


async def test_two_apps_in_one_process_count_separately(
    driver: AsyncDriver, metrics_settings: tuple[Settings, Tokens]
) -> None:
    app_config, _ = metrics_settings
    async with serving(app_config) as one, serving(app_config) as two:
        for _ in range(3):
            await one.get("/healthz")
        await two.get("/healthz")
        first, second = (await one.get("/metrics")).text, (await two.get("/metrics")).text
    line = 'idgraph_http_requests_total{method="GET",route="/healthz",status="200"}'
    assert f"{line} 3.0" in first
    assert f"{line} 1.0" in second
