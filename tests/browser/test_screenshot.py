"""The README's picture of the inspector: a merged customer, taken from the real stack.

`make screenshot` (IDGRAPH_UPDATE_SCREENSHOT=1) writes it to docs/inspector.png; otherwise it goes to a temporary
directory, and the test only checks that the page renders one.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from playwright.async_api import expect

from app.config import REPO_ROOT
from tests.browser.conftest import Inspector, profile_node
from tests.browser.stack import Api, Loaded, Tokens, identities

pytestmark = [pytest.mark.browser, pytest.mark.neo4j]

DOCS_SHOT = REPO_ROOT / "docs" / "inspector.png"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


async def test_a_merged_customer_renders_for_the_readme_screenshot(
    inspector: Inspector, tokens: Tokens, reference: Loaded, api: Api, shot_dir: Path
) -> None:
    (pos,) = await api.upsert(
        [
            {
                "source": "pos",
                "sourceId": "STORE-12-4471",
                "identities": identities(email_address="J.Doe@Work.example"),
                "attributes": {"home_store": "Union Square"},
            }
        ]
    )
    await api.merge(pos, reference.crm, "receipt signed by the same customer")
    await api.upsert(
        [{"source": "webchat", "sourceId": "W-77", "identities": identities(email_address="test@example.com")}]
    )
    page = inspector.page
    await inspector.open(tokens.steward)
    await inspector.search("(415) 555-2671")
    drawn = await inspector.drawn()
    assert {k: drawn[k] for k in ("profiles", "merges", "nonlinking")} == {"profiles": 4, "merges": 1, "nonlinking": 1}
    await inspector.click(profile_node(reference.crm))
    await expect(page.locator("#details")).to_have_attribute("data-showing", "profile")
    await page.locator("#search-value").blur()

    target = DOCS_SHOT if os.environ.get("IDGRAPH_UPDATE_SCREENSHOT") == "1" else shot_dir / "inspector.png"
    await page.screenshot(path=str(target))
    width, height = png_size(target)
    assert (width, height) == (1440, 900)
    assert target.stat().st_size > 30_000, "a blank page compresses to almost nothing"
