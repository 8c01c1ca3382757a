"""Browser tests of /inspect: Debian's Chromium driven by Playwright, against a real `idgraph serve` on a real Neo4j.

Chromium is launched from its executable path (IDGRAPH_CHROMIUM, default /usr/bin/chromium); no browser is ever
downloaded. Without it the tests are skipped with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from tests.browser.stack import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Api,
    Loaded,
    Server,
    Tokens,
    chromium_missing,
    load_reference,
    make_tokens,
    serve,
)
from tests.conftest import free_port

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize

VIEWPORT: ViewportSize = {"width": 1440, "height": 900}  # a laptop screen
WAIT_MS = 30_000  # for the page and for expect(): a loaded CI machine takes seconds for a write


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="session")
def chromium() -> str:
    reason = chromium_missing()
    if reason is not None:
        _fail_or_skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def stack_tokens(settings: Settings) -> tuple[Path, Tokens]:
    var_dir = settings.var_dir / "browser"
    var_dir.mkdir(parents=True, exist_ok=True)
    tokens_file = var_dir / "tokens.json"
    return tokens_file, make_tokens(tokens_file)


@pytest.fixture(scope="session")
def server(
    settings: Settings, session_driver: AsyncDriver, stack_tokens: tuple[Path, Tokens], chromium: str
) -> Iterator[Server]:
    """One `idgraph serve` for the browser tests, on the session's (migrated) test database."""
    tokens_file, _ = stack_tokens
    with serve(
        neo4j_uri=settings.neo4j_uri, var_dir=tokens_file.parent, tokens_file=tokens_file, port=free_port()
    ) as running:
        vendor = httpx.get(f"{running.base_url}/inspect/vendor/cytoscape.min.js", timeout=10.0)
        if vendor.status_code != 200:
            _fail_or_skip(f"/inspect/vendor/cytoscape.min.js answered {vendor.status_code}: {vendor.text[:200]}")
        yield running


@pytest.fixture(scope="session")
def tokens(stack_tokens: tuple[Path, Tokens]) -> Tokens:
    return stack_tokens[1]


@pytest.fixture
async def api(server: Server, tokens: Tokens, driver: AsyncDriver) -> AsyncIterator[Api]:
    """A steward's GraphQL client on a clean graph (the `driver` fixture empties it before each test)."""
    client = Api(server.base_url, tokens.steward)
    yield client
    await client.aclose()


@pytest.fixture
async def reference(api: Api) -> Loaded:
    """The reference example customer (crm + ivr + webchat) and a second customer, loaded through GraphQL."""
    return await load_reference(api)


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as playwright:
        # Playwright gives every launch a fresh, empty --user-data-dir of its own.
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


class Inspector:
    """The /inspect page in one browser tab, and what it printed on its console."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    async def open(self, token: str) -> None:
        from playwright.async_api import expect

        await self.page.goto(f"{self.base_url}/inspect")
        await self.page.get_by_label("Token").fill(token)
        await self.page.get_by_label("Token").press("Enter")
        await expect(self.page.locator("#app")).to_be_visible()

    async def stats(self) -> dict[str, int]:
        data: dict[str, str] = await self.page.eval_on_selector("#graph-stats", "el => ({...el.dataset})")
        return {k: int(v) for k, v in data.items()}

    async def drawn(self) -> dict[str, int]:
        """Counts read from cytoscape's own state: what is on the canvas."""
        counts: dict[str, int] = await self.page.evaluate(
            """() => {
                const cy = window.idgraphInspector.cy;
                return {
                    nodes: cy.nodes().length, edges: cy.edges().length,
                    profiles: cy.nodes('.profile').length, identities: cy.nodes('.identity').length,
                    linking: cy.edges('.linking').length, nonlinking: cy.edges('.nonlinking').length,
                    merges: cy.edges('.merged').length, highlighted: cy.elements('.highlighted').length,
                };
            }"""
        )
        return counts

    async def after_redraw(self, action: Callable[[], Awaitable[Any]]) -> None:
        """Do something that makes the page draw again, and wait until it has."""
        from playwright.async_api import expect

        before = (await self.stats())["version"]
        await action()
        try:
            await expect(self.page.locator("#graph-stats")).not_to_have_attribute("data-version", str(before))
        except AssertionError as exc:
            status = await self.page.locator("#status").text_content()
            raise AssertionError(
                f"the page did not draw again; status: {status!r}; console: {self.console_errors}"
            ) from exc
        await expect(self.page.locator("body")).to_have_attribute("data-busy", "false")

    async def search(self, value: str, by: str = "auto") -> None:
        page = self.page
        await page.get_by_label("Search by").select_option(by)
        await page.get_by_label("Value").fill(value)
        await self.after_redraw(lambda: page.get_by_label("Value").press("Enter"))

    async def node_ids(self, selector: str) -> list[str]:
        ids: list[str] = await self.page.evaluate(
            "(s) => window.idgraphInspector.cy.nodes(s).map(n => n.id())", selector
        )
        return ids

    async def classes_of(self, element_id: str) -> list[str]:
        classes: list[str] = await self.page.evaluate(
            "(id) => window.idgraphInspector.cy.getElementById(id).classes()", element_id
        )
        return classes

    async def _point(self, element_id: str) -> dict[str, float]:
        point: dict[str, float] = await self.page.evaluate(
            """(id) => {
                const el = window.idgraphInspector.cy.getElementById(id);
                const p = el.isNode() ? el.renderedPosition() : el.renderedMidpoint();
                const box = document.getElementById('graph').getBoundingClientRect();
                return {x: box.left + p.x, y: box.top + p.y};
            }""",
            element_id,
        )
        return point

    async def click(self, element_id: str, *, shift: bool = False) -> None:
        """A real mouse click on a node or an edge of the canvas."""
        point = await self._point(element_id)
        if shift:
            await self.page.keyboard.down("Shift")
        await self.page.mouse.click(point["x"], point["y"])
        if shift:
            await self.page.keyboard.up("Shift")

    async def confirm(self) -> None:
        from playwright.async_api import expect

        dialog = self.page.locator("dialog#confirm")
        await expect(dialog).to_be_visible()
        await dialog.locator("#confirm-ok").click()
        await expect(dialog).to_be_hidden()


def profile_node(profile_id: str) -> str:
    return f"p:{profile_id}"


def identity_node(key: str, value: str) -> str:
    return 'i:["' + key + '","' + value + '"]'


@pytest.fixture
async def inspector(browser: Browser, server: Server) -> AsyncIterator[Inspector]:
    """A fresh browser context (no storage shared with other tests) on /inspect; no console errors allowed."""
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    ui = Inspector(page, server.base_url)
    try:
        yield ui
        assert ui.console_errors == [], f"the page logged errors: {ui.console_errors}"
    finally:
        await context.close()


@pytest.fixture
def shot_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="inspector-shots-") as name:
        yield Path(name)
