"""/inspect in headless Chromium on the real stack: what a data steward sees and does.

Counts are read from the page itself: the data-* attributes of #graph-stats and cytoscape's own state.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.conftest import Inspector, identity_node, profile_node
from tests.browser.stack import Api, Loaded, Server, Tokens, identities

pytestmark = [pytest.mark.browser, pytest.mark.neo4j]

PHONE = identity_node("phone_number", "+14155552671")
EMAIL = identity_node("email_address", "john.doe@example.com")
ACCOUNT = identity_node("account_id", "ACCT-98765")

REFERENCE_DRAWING = {
    "nodes": 6,  # 3 profiles + the phone, the email and the account id
    "edges": 5,  # crm holds all three; ivr the phone; webchat the email
    "profiles": 3,
    "identities": 3,
    "linking": 5,
    "nonlinking": 0,
    "merges": 0,
}


def subset(counts: dict[str, int], keys: dict[str, int]) -> dict[str, int]:
    return {k: counts[k] for k in keys}


async def test_the_page_and_its_library_are_served_by_the_app_with_a_strict_policy(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = await http.get("/inspect")
        library = await http.get("/inspect/vendor/cytoscape.min.js")
        script = await http.get("/inspect/static/inspect.js")
        unknown = await http.get("/inspect/vendor/jquery.js")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "http" not in page.text.replace(server.base_url, ""), "the page must not load anything from elsewhere"
    assert library.status_code == 200 and "cytoscape" in library.text[:2000].lower()
    assert script.status_code == 200
    assert unknown.status_code == 404


async def test_searching_the_reference_customer_draws_its_profiles_identities_and_links(
    inspector: Inspector, tokens: Tokens, reference: Loaded
) -> None:
    await inspector.open(tokens.steward)
    for value, by in [
        ("(415) 555-2671", "auto"),
        ("john.doe@example.com", "email_address"),
        ("ACCT-98765", "auto"),
        (reference.ivr, "profile"),
        (reference.webchat, "auto"),  # not an identity value: looked up as a profile id
    ]:
        await inspector.search(value, by)
        assert subset(await inspector.stats(), REFERENCE_DRAWING) == REFERENCE_DRAWING, value
        assert subset(await inspector.drawn(), REFERENCE_DRAWING) == REFERENCE_DRAWING, value
        assert (await inspector.stats())["customers"] == 1
        assert set(await inspector.node_ids(".profile")) == {
            profile_node(reference.crm),
            profile_node(reference.ivr),
            profile_node(reference.webchat),
        }
        assert set(await inspector.node_ids(".identity")) == {PHONE, EMAIL, ACCOUNT}
    await expect(inspector.page.locator("#graph-stats")).to_contain_text("6 nodes")


async def test_the_search_form_works_from_the_keyboard(inspector: Inspector, tokens: Tokens, reference: Loaded) -> None:
    page = inspector.page
    await inspector.open(tokens.steward)
    await expect(page.get_by_label("Value")).to_be_focused()  # the page puts the cursor in the search box
    await page.keyboard.type("+1 415 555 2671")
    await inspector.after_redraw(lambda: page.keyboard.press("Enter"))
    assert (await inspector.stats())["profiles"] == 3


async def test_several_keys_landing_in_different_customers_list_the_candidates_and_one_can_be_drawn(
    inspector: Inspector, tokens: Tokens, reference: Loaded
) -> None:
    page = inspector.page
    await inspector.open(tokens.steward)
    await inspector.search("john.doe@example.com, jane.roe@example.com")
    await expect(page.locator("#status")).to_contain_text("Ambiguous")
    candidates = page.locator("#candidate-list button")
    await expect(candidates).to_have_count(2)
    assert (await inspector.stats())["nodes"] == 0, "no guess is drawn"
    jane = candidates.filter(has_text="C-2002")
    await inspector.after_redraw(jane.click)
    assert subset(await inspector.drawn(), {"profiles": 1, "identities": 3, "edges": 3}) == {
        "profiles": 1,
        "identities": 3,
        "edges": 3,
    }
    assert await inspector.node_ids(".profile") == [profile_node(reference.jane)]


async def test_clicking_a_profile_shows_its_details_and_where_each_surviving_value_came_from(
    inspector: Inspector, tokens: Tokens, reference: Loaded
) -> None:
    page = inspector.page
    details = page.locator("#details")
    await inspector.open(tokens.steward)
    await inspector.search("ACCT-98765")

    await inspector.click(profile_node(reference.crm))
    await expect(details).to_have_attribute("data-showing", "profile")
    await expect(details).to_contain_text("Source")
    await expect(details.locator("dd").nth(0)).to_have_text("crm")
    await expect(details.locator("dd").nth(1)).to_have_text("C-1001")
    await expect(details.locator("dd").nth(2)).to_have_text(reference.crm)
    tier = details.locator('tr[data-attribute="tier"]')
    await expect(tier).to_contain_text("Platinum")
    await expect(tier).to_contain_text("this value")  # the crm profile's tier is the one the customer keeps
    await expect(details.locator("ul.links li")).to_have_count(3)

    await inspector.click(profile_node(reference.ivr))
    await expect(details.locator("dd").nth(1)).to_have_text("IVR-5501")
    phone = details.locator('ul.links li[data-key="phone_number"]')
    await expect(phone).to_contain_text("+14155552671")
    await expect(phone).to_contain_text('written "(415) 555-2671"')
    await expect(phone).to_contain_text("seen 20")

    await inspector.click(PHONE)
    await expect(details).to_have_attribute("data-showing", "identity")
    await expect(details).to_contain_text("Normalized value")
    await expect(details).to_contain_text("2 profiles")
    spellings = details.locator("ul.holders li")
    await expect(spellings).to_have_count(2)
    await expect(spellings.filter(has_text="ivr")).to_contain_text('written "(415) 555-2671"')
    await expect(spellings.filter(has_text="crm")).to_contain_text('written "+14155552671"')


async def test_shift_clicking_a_second_profile_highlights_the_chain_that_links_them(
    inspector: Inspector, tokens: Tokens, reference: Loaded
) -> None:
    page = inspector.page
    await inspector.open(tokens.steward)
    await inspector.search("+14155552671")
    await inspector.click(profile_node(reference.ivr))
    await inspector.click(profile_node(reference.webchat), shift=True)

    await expect(page.locator(".explain-result")).to_have_attribute("data-steps", "2")
    steps = page.locator("#details ol.steps li")
    await expect(steps.nth(0)).to_contain_text("phone_number +14155552671")
    await expect(steps.nth(1)).to_contain_text("email_address john.doe@example.com")
    # ivr -phone- crm -email- webchat: 3 profiles, 2 identities and the 4 edges between them.
    lit = await page.evaluate("() => window.idgraphInspector.cy.elements('.highlighted').map(e => e.id())")
    assert len(lit) == 9
    assert {
        profile_node(reference.ivr),
        profile_node(reference.crm),
        profile_node(reference.webchat),
        PHONE,
        EMAIL,
    } <= set(lit)
    assert ACCOUNT not in lit
    assert "faded" in await inspector.classes_of(ACCOUNT)
    assert (await inspector.stats())["highlighted"] == 9

    await page.get_by_role("button", name="Clear").click()
    assert (await inspector.drawn())["highlighted"] == 0


async def test_unlinking_an_identity_after_confirming_splits_the_component(
    inspector: Inspector, tokens: Tokens, reference: Loaded, api: Api
) -> None:
    page = inspector.page
    await inspector.open(tokens.steward)
    await inspector.search("ACCT-98765")
    await inspector.click(profile_node(reference.ivr))
    unlink = page.locator('#details ul.links li[data-key="phone_number"] [data-action="unlink"]')

    await unlink.click()  # cancelling changes nothing
    await page.locator("#confirm-cancel").click()
    assert await api.customer_profiles(reference.crm) == {reference.crm, reference.ivr, reference.webchat}

    await unlink.click()
    await inspector.after_redraw(inspector.confirm)
    await expect(page.locator("#status")).to_contain_text("split")
    stats = await inspector.stats()
    assert subset(stats, {"customers": 2, "profiles": 3, "identities": 3, "edges": 4}) == {
        "customers": 2,
        "profiles": 3,
        "identities": 3,
        "edges": 4,
    }
    assert (await inspector.drawn())["edges"] == 4
    assert await api.customer_profiles(reference.crm) == {reference.crm, reference.webchat}
    assert await api.customer_profiles(reference.ivr) == {reference.ivr}

    await page.get_by_label("First profile").select_option(reference.ivr)
    await page.get_by_label("Second profile").select_option(reference.crm)
    await page.get_by_role("button", name="Explain link").click()
    await expect(page.locator(".explain-result")).to_have_attribute("data-connected", "false")


async def test_unmerging_a_merge_edge_redraws_two_customers(
    inspector: Inspector, tokens: Tokens, reference: Loaded, api: Api
) -> None:
    page = inspector.page
    # Forced past the account_id conflict, as a steward might by mistake: the page must show the conflict.
    await api.merge(reference.jane, reference.crm, "same household, confirmed by phone", force=True)
    await inspector.open(tokens.steward)
    await inspector.search("ACCT-98765")
    assert subset(await inspector.drawn(), {"profiles": 4, "merges": 1}) == {"profiles": 4, "merges": 1}
    # two account ids on one customer: both marked as conflicting
    assert "conflict" in await inspector.classes_of(ACCOUNT)
    assert "conflict" in await inspector.classes_of(identity_node("account_id", "ACCT-12345"))

    await inspector.click('m:["' + reference.jane + '","' + reference.crm + '"]')
    details = page.locator("#details")
    await expect(details).to_have_attribute("data-showing", "merge")
    await expect(details).to_contain_text("same household, confirmed by phone")
    await expect(details).to_contain_text("steward")
    await details.locator('[data-action="unmerge"]').click()
    await inspector.after_redraw(inspector.confirm)
    assert subset(await inspector.stats(), {"customers": 2, "merges": 0, "profiles": 4}) == {
        "customers": 2,
        "merges": 0,
        "profiles": 4,
    }
    assert await api.customer_profiles(reference.jane) == {reference.jane}


async def test_erasure_preview_lists_what_would_go_and_deletes_nothing_until_erase(
    inspector: Inspector, tokens: Tokens, reference: Loaded, api: Api
) -> None:
    page = inspector.page
    details = page.locator("#details")
    await inspector.open(tokens.steward)
    await inspector.search("john.doe@example.com")
    await details.locator('[data-action="erase-preview"]').click()

    await expect(details).to_have_attribute("data-showing", "erasure-preview")
    await expect(details.locator("ul.erase-profiles li")).to_have_count(3)
    await expect(details.locator("ul.erase-identities li")).to_have_count(3)
    await expect(details.locator("ul.erase-identities")).to_contain_text("phone_number: +14155552671")
    await expect(details).to_contain_text("Nothing has been deleted")
    assert await api.customer_profiles(reference.crm) == {reference.crm, reference.ivr, reference.webchat}
    assert (await inspector.stats())["profiles"] == 3

    await page.get_by_label("Request id").fill("dsr-2026-0042")
    await page.get_by_label("Reason").fill("GDPR art. 17 request")
    await details.locator('[data-action="erase"]').click()
    await inspector.after_redraw(inspector.confirm)
    await expect(details).to_have_attribute("data-showing", "erasure-receipt")
    await expect(details).to_contain_text("dsr-2026-0042")
    await expect(details.locator("dd").nth(2)).to_have_text("3")  # profiles deleted
    assert (await inspector.stats())["nodes"] == 0
    assert await api.customer_profiles(reference.crm) == set()
    assert await api.customer_profiles(reference.jane) == {reference.jane}


async def test_a_read_only_token_gets_no_write_or_erase_buttons(
    inspector: Inspector, tokens: Tokens, reference: Loaded
) -> None:
    page = inspector.page
    await inspector.open(tokens.reader)
    await expect(page.locator("#session-scopes")).to_have_attribute("data-scopes", "identity:read")
    await inspector.search("+14155552671")
    assert (await inspector.stats())["profiles"] == 3
    await expect(page.locator('[data-action="erase-preview"]')).to_have_count(0)
    await inspector.click(profile_node(reference.crm))
    await expect(page.locator("#details ul.links li")).to_have_count(3)
    await expect(page.locator('[data-action="unlink"]')).to_have_count(0)
    await expect(page.locator('[data-action="erase-preview"]')).to_have_count(0)
    await inspector.click(PHONE)
    await expect(page.locator("#details ul.holders li")).to_have_count(2)
    await expect(page.locator('[data-action="unlink"]')).to_have_count(0)


async def test_a_write_token_may_unlink_but_gets_no_erase_buttons(
    inspector: Inspector, tokens: Tokens, reference: Loaded
) -> None:
    page = inspector.page
    await inspector.open(tokens.writer)
    await expect(page.locator("#session-scopes")).to_have_attribute("data-scopes", "identity:read identity:write")
    await inspector.search("+14155552671")
    await inspector.click(profile_node(reference.crm))
    await expect(page.locator('[data-action="unlink"]')).to_have_count(3)
    await expect(page.locator('[data-action="erase-preview"]')).to_have_count(0)


async def test_the_token_is_asked_once_and_kept_in_session_storage_only(
    inspector: Inspector, tokens: Tokens, reference: Loaded
) -> None:
    page = inspector.page
    await inspector.open(tokens.reader)
    assert await page.evaluate("() => sessionStorage.getItem('idgraph.inspector.token')") == tokens.reader
    assert await page.evaluate("() => localStorage.length") == 0
    assert await page.evaluate("() => document.cookie") == ""

    await page.reload()
    await expect(page.locator("#app")).to_be_visible()  # not asked again in this tab
    await expect(page.locator("#token-panel")).to_be_hidden()

    await page.get_by_role("button", name="Forget token").click()
    await expect(page.locator("#token-panel")).to_be_visible()
    assert await page.evaluate("() => sessionStorage.length") == 0


async def test_blocked_and_over_the_limit_identities_are_marked_and_do_not_link(
    inspector: Inspector, tokens: Tokens, reference: Loaded, api: Api
) -> None:
    shared = "+1 800 555 0199"  # a number on 52 kiosk profiles: over the default fan-out limit of 50
    kiosks = await api.upsert(
        [{"source": "kiosk", "sourceId": f"K-{n}", "identities": identities(phone_number=shared)} for n in range(52)]
    )
    await api.upsert(
        [{"source": "webchat", "sourceId": "W-77", "identities": identities(email_address="test@example.com")}]
    )
    page = inspector.page
    await inspector.open(tokens.steward)

    await inspector.search("john.doe@example.com")
    blocked = identity_node("email_address", "test@example.com")
    assert "blocked" in await inspector.classes_of(blocked)
    drawn = await inspector.drawn()
    assert subset(drawn, {"profiles": 3, "nonlinking": 1}) == {"profiles": 3, "nonlinking": 1}

    await inspector.search(kiosks[0], "profile")
    saturated = identity_node("phone_number", "+18005550199")
    assert "saturated" in await inspector.classes_of(saturated)
    assert subset(await inspector.drawn(), {"profiles": 1, "nonlinking": 1, "linking": 0}) == {
        "profiles": 1,
        "nonlinking": 1,
        "linking": 0,
    }
    await inspector.click(saturated)
    await expect(page.locator("#details")).to_contain_text("52 profiles")
    await expect(page.locator("#details")).to_contain_text("more than 50")

    await inspector.search(shared)  # never resolved to an arbitrary customer
    await expect(page.locator("#status")).to_contain_text("Ambiguous")
    await expect(page.locator("#legend, .legend")).to_contain_text("Over the fan-out limit")


async def test_the_history_panel_lists_the_customers_changes_newest_first_for_an_audit_token(
    inspector: Inspector, tokens: Tokens, reference: Loaded, api: Api
) -> None:
    page = inspector.page
    await api.merge(reference.jane, reference.crm, "same household, confirmed by phone", force=True)
    await inspector.open(tokens.auditor)
    await inspector.search("ACCT-98765")
    history = page.locator("section.history")
    await expect(history).to_have_attribute("data-status", "ok")
    merge = history.locator('li[data-type="MERGE"]')
    await expect(merge).to_have_count(1)
    await expect(merge).to_contain_text("merged into")
    await expect(merge).to_contain_text("by steward")
    await expect(merge).to_contain_text("same household, confirmed by phone")
    cursors = [int(c) for c in await history.locator("li").evaluate_all("els => els.map(e => e.dataset.cursor)")]
    assert cursors == sorted(cursors, reverse=True)
    # Nothing of it kept in the browser or put in the address: the token only, in this tab's session storage.
    assert await page.evaluate("() => Object.keys(sessionStorage)") == ["idgraph.inspector.token"]
    assert await page.evaluate("() => localStorage.length") == 0
    assert page.url == f"{inspector.base_url}/inspect"


async def test_a_token_without_the_audit_scope_gets_no_history_panel(
    inspector: Inspector, tokens: Tokens, reference: Loaded
) -> None:
    await inspector.open(tokens.steward)
    await inspector.search("ACCT-98765")
    await expect(inspector.page.locator("section.customer")).to_have_count(1)
    await expect(inspector.page.locator("section.history")).to_have_count(0)


async def test_a_contested_identity_is_marked_with_its_own_legend_entry_and_explained(
    inspector: Inspector, tokens: Tokens, reference: Loaded, api: Api
) -> None:
    landline = "+1 415 555 0100"  # a household's: two account holders share it
    ann, _ = await api.upsert(
        [
            {
                "source": "crm",
                "sourceId": "H-1",
                "identities": identities(phone_number=landline, account_id="H-ACCT-1"),
            },
            {
                "source": "crm",
                "sourceId": "H-2",
                "identities": identities(phone_number=landline, account_id="H-ACCT-2"),
            },
        ]
    )
    page = inspector.page
    await inspector.open(tokens.steward)

    await inspector.search(ann, "profile")
    contested = identity_node("phone_number", "+14155550100")
    assert "contested" in await inspector.classes_of(contested)
    assert subset(await inspector.drawn(), {"profiles": 1, "nonlinking": 1}) == {"profiles": 1, "nonlinking": 1}
    await inspector.click(contested)
    await expect(page.locator("#details")).to_contain_text("2 values of account_id")
    await expect(page.locator("#legend, .legend")).to_contain_text("Contested")

    await inspector.search(landline)  # names two people: never resolved to one of them
    await expect(page.locator("#status")).to_contain_text("Ambiguous")
