"""GraphiQL at /graphql in headless Chromium that can reach nothing but the local `idgraph serve`: it loads, runs a
query with a real token, and leaves neither the token nor the query in the browser's storage or in the URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import expect

from tests.browser.conftest import VIEWPORT, WAIT_MS
from tests.browser.stack import CHROMIUM_ARGS, Server, Tokens

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Request, Response

pytestmark = [pytest.mark.browser, pytest.mark.neo4j]

# No network but the loopback: every other host name fails to resolve, and whatever would still go out goes to a
# proxy that is not there (Chromium never sends loopback requests through a proxy).
OFFLINE_ARGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
]
HINT = "<paste your token>"
QUERY = "{ me { name scopes } }"


@pytest.fixture(scope="module")
async def offline_browser(chromium: str) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=[*CHROMIUM_ARGS, *OFFLINE_ARGS]
        )
        try:
            yield launched
        finally:
            await launched.close()


class GraphiQLTab:
    """/graphql in one browser tab: every request it made, and what it printed as errors."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.console_errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("requestfailed", self._on_failed)
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))

    def _on_failed(self, request: Request) -> None:
        self.failed.append(f"{request.url}: {request.failure}")

    async def open(self) -> None:
        await self.page.goto(f"{self.base_url}/graphql")
        await expect(self.page.locator(".graphiql-container")).to_be_visible()

    def _editor(self, selector: str) -> str:
        return f"document.querySelector('{selector} .CodeMirror').CodeMirror"

    async def text_of(self, selector: str) -> str:
        text: str = await self.page.evaluate(f"() => {self._editor(selector)}.getValue()")
        return text

    async def set_text(self, selector: str, text: str) -> None:
        await self.page.evaluate(f"(text) => {self._editor(selector)}.setValue(text)", text)

    async def set_headers(self, headers: dict[str, str]) -> None:
        await self.page.get_by_role("button", name="Headers", exact=True).click()
        await self.set_text(HEADERS, json.dumps(headers))

    async def run(self) -> dict[str, object]:
        """Run the query editor's operation; the response pane's JSON."""
        async with self.page.expect_response(lambda r: is_operation(r, "me")) as answer:
            await self.page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
        assert (await answer.value).status == 200
        await expect(self.page.locator(RESPONSE)).to_contain_text('"data"')
        body: dict[str, object] = json.loads(await self.text_of(RESPONSE))
        return body

    async def browser_storage(self) -> dict[str, object]:
        stored: dict[str, object] = await self.page.evaluate(
            """() => ({
                local: Object.fromEntries(Object.entries(localStorage)),
                session: Object.fromEntries(Object.entries(sessionStorage)),
                cookies: document.cookie,
            })"""
        )
        return stored


QUERY_EDITOR = ".graphiql-query-editor"
EDITOR_TOOLS = ".graphiql-editor-tool"  # the Variables and Headers tabs; its aria-label names the one shown
HEADERS = f"{EDITOR_TOOLS} > .graphiql-editor:nth-child(2)"
RESPONSE = ".graphiql-response"


def is_operation(response: Response, field: str) -> bool:
    body = response.request.post_data or ""
    return response.url.endswith("/graphql") and response.request.method == "POST" and field in body


def is_introspection(response: Response) -> bool:
    return is_operation(response, "IntrospectionQuery")


@pytest.fixture
async def graphiql(offline_browser: Browser, server: Server) -> AsyncIterator[GraphiQLTab]:
    """A fresh context (no storage shared with other tests); no console errors or failed requests allowed."""
    context = await offline_browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    tab = GraphiQLTab(page, server.base_url)
    try:
        yield tab
        assert tab.console_errors == [], f"the page logged errors: {tab.console_errors}"
        assert tab.failed == [], f"requests failed: {tab.failed}"
    finally:
        await context.close()


async def test_the_page_and_its_libraries_are_served_by_the_app_with_a_strict_policy(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        libraries = {
            name: await http.get(f"/graphiql/vendor/{name}")
            for name in ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js")
        }
        style = await http.get("/graphiql/vendor/graphiql.min.css")
        over_get = await http.get("/graphql", params={"query": QUERY}, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "connect-src 'self';" in policy
    assert "http" not in page.text.replace(server.base_url, ""), "the page must not load anything from elsewhere"
    for name, library in libraries.items():
        assert library.status_code == 200, f"{name}: {library.text[:200]}"
        assert library.headers["content-type"].startswith("text/javascript"), name
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert over_get.status_code == 400, "an operation over GET is still the API's to refuse, not the page's"


async def test_the_browser_used_below_reaches_no_other_host(offline_browser: Browser) -> None:
    """The control: a CDN the page might have loaded from is out of reach."""
    context = await offline_browser.new_context()
    try:
        page = await context.new_page()
        with pytest.raises(PlaywrightError):
            await page.goto("https://unpkg.com/graphiql@3.9.0/dist/style.css", timeout=10_000)
    finally:
        await context.close()


async def test_graphiql_runs_a_query_offline_and_keeps_nothing_in_the_browser_or_the_url(
    graphiql: GraphiQLTab, tokens: Tokens
) -> None:
    await graphiql.open()
    # The Headers tab is open with the hint, and the schema is not asked for with the hint: the page says what to do.
    await expect(graphiql.page.locator(f'{EDITOR_TOOLS}[aria-label="Headers"]')).to_be_visible()
    await expect(graphiql.page.locator(HEADERS)).to_be_visible()
    assert HINT in await graphiql.text_of(HEADERS)
    await expect(graphiql.page.locator(RESPONSE)).to_contain_text("Paste your API token")

    # A token pasted into the Headers tab loads the schema with it.
    async with graphiql.page.expect_response(is_introspection) as introspection:
        await graphiql.set_headers({"Authorization": f"Bearer {tokens.reader}"})
    assert (await introspection.value).status == 200
    await graphiql.set_text(QUERY_EDITOR, QUERY)

    body = await graphiql.run()

    assert body == {"data": {"me": {"name": "reader", "scopes": ["identity:read"]}}}
    stored = await graphiql.browser_storage()
    assert stored == {"local": {}, "session": {}, "cookies": ""}, "nothing may be stored in the browser"
    assert await graphiql.page.evaluate("() => localStorage.length") == 0
    url = urlsplit(graphiql.page.url)
    assert (url.path, url.query, url.fragment) == ("/graphql", "", ""), graphiql.page.url
    local = [u for u in graphiql.requests if not u.startswith("data:")]
    assert all(u.startswith(f"{graphiql.base_url}/") for u in local), local
    assert f"{graphiql.base_url}/graphiql/vendor/graphiql.min.js" in local

    # Reloading forgets the token and the query: they were only ever in the page's memory.
    await graphiql.page.reload()
    await expect(graphiql.page.locator(".graphiql-container")).to_be_visible()
    assert tokens.reader not in await graphiql.text_of(HEADERS)
    assert HINT in await graphiql.text_of(HEADERS)
    assert QUERY not in await graphiql.text_of(QUERY_EDITOR)


async def test_the_docs_and_the_dialogs_work_under_the_policy(graphiql: GraphiQLTab, tokens: Tokens) -> None:
    """The schema loads with the pasted token, and GraphiQL's dialogs open without a style the policy refuses (the
    fixture fails the test on any console error, a refused style included)."""
    page = graphiql.page
    await graphiql.open()
    await graphiql.set_headers({"Authorization": f"Bearer {tokens.reader}"})

    await page.get_by_role("button", name="Show Documentation Explorer").click()
    docs = page.locator(".graphiql-doc-explorer")
    await docs.get_by_role("link", name="Query", exact=True).click()
    await expect(docs.get_by_role("link", name="me", exact=True)).to_be_visible()

    for name in ("Open settings dialog", "Open short keys dialog"):
        await page.get_by_role("button", name=name).click()
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog).not_to_contain_text("Persist headers")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
    assert await page.evaluate("() => localStorage.length") == 0
