"""GraphiQL's routes in front of a stand-in for the API: which GETs of /graphql get the page, its policy, its files."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.web import graphiql, vendor


async def api(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"api {request.method}")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[*graphiql.graphiql_routes(), Route("/graphql", api, methods=["GET", "POST"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://idgraph.test") as http:
        yield http


def served_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


@pytest.mark.parametrize("accept", ["text/html,application/xhtml+xml,*/*;q=0.8", "*/*"])
async def test_a_browser_get_of_graphql_gets_the_page_with_a_strict_policy(
    client: httpx.AsyncClient, accept: str
) -> None:
    response = await client.get("/graphql", headers={"accept": accept})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
    assert "default-src 'none'" in policy
    assert "http" not in policy, "no other origin is allowed"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "graphiql" in response.text.lower()


@pytest.mark.parametrize(
    ("method", "path", "accept"),
    [
        ("GET", "/graphql?query=%7B%20me%20%7B%20name%20%7D%20%7D", "text/html"),  # an operation over GET
        ("GET", "/graphql", "application/json"),
        ("GET", "/graphql", ""),
        ("POST", "/graphql", "text/html"),
    ],
)
async def test_every_other_request_to_graphql_goes_on_to_the_api(
    client: httpx.AsyncClient, method: str, path: str, accept: str
) -> None:
    response = await client.request(method, path, headers={"accept": accept})

    assert (response.status_code, response.text) == (200, f"api {method}")


async def test_the_page_runs_no_inline_code_and_loads_only_from_this_server(client: httpx.AsyncClient) -> None:
    page = (await client.get("/graphql")).text

    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "every script is a file: script-src 'self' forbids inline"
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"\son[a-z]+=", page), "no inline event handlers"
    for url in served_urls(page):
        assert url.startswith(("/graphiql/", "data:")), url


async def test_the_page_own_files_are_served(client: httpx.AsyncClient) -> None:
    script = await client.get("/graphiql/static/graphiql.js")
    style = await client.get("/graphiql/static/graphiql.css")

    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "shouldPersistHeaders: false" in script.text
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")


async def test_each_library_the_page_loads_is_served_from_web_node_modules_or_named_as_missing(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/graphql")).text
    vendor = [url for url in served_urls(page) if url.startswith("/graphiql/vendor/")]
    assert sorted(name.rpartition("/")[2] for name in vendor) == sorted(graphiql.VENDOR_FILES)

    for url in vendor:
        response = await client.get(url)
        installed = graphiql.vendor_file(url.rpartition("/")[2])
        assert installed is not None, url
        if installed.is_file():
            assert response.status_code == 200, url
            expected = "text/css" if url.endswith(".css") else "text/javascript"
            assert response.headers["content-type"].startswith(expected), url
            assert response.headers["x-content-type-options"] == "nosniff"
            assert len(response.content) == installed.stat().st_size
        else:
            assert (response.status_code, response.text) == (503, graphiql.MISSING_VENDOR), url


async def test_a_library_that_is_not_installed_is_answered_with_what_to_run(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(vendor, "NODE_MODULES", tmp_path / "node_modules")  # a checkout without `npm ci`

    response = await client.get("/graphiql/vendor/graphiql.min.js")

    assert response.status_code == 503
    assert response.text == graphiql.MISSING_VENDOR
    assert "make install" in response.text


async def test_a_name_the_page_does_not_use_is_not_found(client: httpx.AsyncClient) -> None:
    assert (await client.get("/graphiql/vendor/jquery.js")).status_code == 404
    assert (await client.get("/graphiql/vendor/..%2F..%2Fpackage.json")).status_code == 404
