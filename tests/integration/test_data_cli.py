"""The data commands of `idgraph` (ingest, demo, export, resolve, erase, purge, renormalize) on the real Neo4j,
called as an operator would, through app.cli.main with the environment pointing at the test database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from app.cli import main as cli
from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.repository import Neo4jRepository
from app.domain.changes import ChangeType
from app.domain.model import ProfileInput
from app.services.identity import IdentityService
from tests.conftest import free_port
from tests.erasure_key import ERASURE_KEY
from tests.integration.bulk_helpers import counts, read_rejects, write_jsonl

pytestmark = pytest.mark.neo4j

PHONE = "phone_number"
EMAIL = "email_address"


class Run:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = await asyncio.to_thread(cli.main, list(args))
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def idgraph(
    settings: Settings,
    driver: AsyncDriver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    monkeypatch.setenv("NEO4J_URI", settings.neo4j_uri)
    monkeypatch.setenv("IDGRAPH_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("IDGRAPH_ERASURE_KEY", ERASURE_KEY)
    monkeypatch.delenv("IDGRAPH_STRATEGY", raising=False)
    for name, value in (("NEO4J_USER", settings.neo4j_user), ("NEO4J_PASSWORD", settings.neo4j_password)):
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    return Run(capsys)


CONTACTS = [
    {
        "source": "crm",
        "source_id": "C-1",
        "identities": [{"key": PHONE, "value": "+14155552671"}, {"key": EMAIL, "value": "john@example.com"}],
        "attributes": {"tier": "Platinum"},
    },
    {"source": "ivr", "source_id": "call-1", "identities": [{"key": PHONE, "value": "(415) 555-2671"}]},
    {"source": "webchat", "source_id": "w-1", "identities": [{"key": EMAIL, "value": "ann@example.com"}]},
    "{not json",
]


async def test_ingest_prints_a_summary_writes_rejects_and_a_rerun_creates_nothing(idgraph: Run, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "contacts.jsonl", CONTACTS)
    code, out, err = await idgraph("ingest", str(path))
    assert code == 0, err
    assert "4 records read" in out and "3  (3 created, 0 updated)" in out and "INVALID_JSON" in out
    assert [(r["line"], r["reason"]) for r in read_rejects(tmp_path / "contacts.jsonl.rejects.jsonl")] == [
        (4, "INVALID_JSON")
    ]
    assert "john@example.com" not in err and "+14155552671" not in err
    code, out, _ = await idgraph("ingest", str(path), "--rejects", str(tmp_path / "r.jsonl"), "--batch-size", "1")
    assert code == 0 and "(0 created, 3 updated)" in out


async def test_ingest_of_a_csv_needs_a_mapping_and_accepts_presets_and_toml_files(idgraph: Run, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("Contact.Id,Contact.Email\n003A,a@example.com\n")
    code, _, err = await idgraph("ingest", str(path))
    assert code == 2 and "needs --mapping" in err
    code, out, err = await idgraph("ingest", str(path), "--mapping", "salesforce")
    assert code == 0 and "(1 created" in out, err
    toml = tmp_path / "mine.toml"
    toml.write_text(
        'source = "mine"\nsource_id = "Contact.Id"\nsauce = 1\n[identities]\nemail_address = "Contact.Email"\n'
    )
    code, _, err = await idgraph("ingest", str(path), "--mapping", str(toml))
    assert code == 2 and "unknown key sauce" in err
    wrong = tmp_path / "dynamics.csv"
    wrong.write_text("contactid,emailaddress1\nc-1,z@example.com\n")
    code, out, err = await idgraph("ingest", str(path), str(wrong), "--mapping", "salesforce")
    assert code == 2 and "Contact.Id" in err and out == ""  # refused before anything is written


async def test_ingest_exits_non_zero_with_a_clear_message_when_the_database_is_down(
    idgraph: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{free_port()}")
    path = write_jsonl(tmp_path / "contacts.jsonl", CONTACTS)
    code, out, err = await idgraph("ingest", str(path))
    assert code == 2 and "0 created" in out
    assert "unavailable" in err and "run the same command again" in err and "Traceback" not in err


async def test_export_writes_one_line_per_profile_with_its_customer(
    idgraph: Run, service: IdentityService, tmp_path: Path
) -> None:
    await idgraph("ingest", str(write_jsonl(tmp_path / "contacts.jsonl", CONTACTS)))
    code, out, _ = await idgraph("export")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(set(r) == {"profile_id", "source", "source_id", "customer_id"} for r in rows)
    by_source = {r["source_id"]: r for r in rows}
    joined = {by_source["C-1"]["profile_id"], by_source["call-1"]["profile_id"]}
    assert by_source["C-1"]["customer_id"] == by_source["call-1"]["customer_id"] == min(joined)  # same created_at
    assert by_source["w-1"]["customer_id"] == by_source["w-1"]["profile_id"]
    target = tmp_path / "out" / "export.jsonl"
    target.parent.mkdir()
    code, _, err = await idgraph("export", "--out", str(target))
    assert code == 0 and "exported 3 profiles" in err
    assert [json.loads(line) for line in target.read_text().splitlines()] == rows
    assert not list(target.parent.glob("*.partial"))


async def test_resolve_prints_json_and_tells_found_not_found_and_ambiguous_by_exit_status(
    idgraph: Run, tmp_path: Path
) -> None:
    await idgraph("ingest", str(write_jsonl(tmp_path / "contacts.jsonl", CONTACTS)))
    code, out, _ = await idgraph("resolve", "phone_number=+1 (415) 555-2671")
    found = json.loads(out)
    assert code == 0 and found["status"] == "FOUND"
    assert {p["source_id"] for p in found["customer"]["profiles"]} == {"C-1", "call-1"}
    assert found["customer"]["skills"] == ["Premium_Support"]
    assert found["matched_on"] == [{"key": PHONE, "value": "+14155552671"}]
    phone = {"key": PHONE, "value": "+14155552671", "linking": True, "blocked": False, "saturated": False}
    phone["contested"] = False
    assert {**phone, "profile_count": 2} in found["customer"]["identities"]  # the REST API's identity object
    assert all({**phone, "profile_count": 2} in p["identities"] for p in found["customer"]["profiles"])
    assert all(p["created_at"].endswith("Z") for p in found["customer"]["profiles"])
    code, out, _ = await idgraph("resolve", "email_address=nobody@example.com")
    assert code == 3 and json.loads(out)["status"] == "NOT_FOUND"
    code, out, _ = await idgraph("resolve", "email_address=ann@example.com", "phone_number=+14155552671")
    assert code == 4 and len(json.loads(out)["candidates"]) == 2
    code, _, err = await idgraph("resolve", "phone_number")
    assert code == 2 and "KEY=VALUE" in err


async def test_erase_dry_run_shows_the_plan_and_erase_prints_the_receipt_once(
    idgraph: Run, service: IdentityService, driver: AsyncDriver
) -> None:
    crm = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "john@example.com"),), source_id="C-1"))
    await service.upsert_profile(ProfileInput("ivr", ((EMAIL, "john@example.com"), (PHONE, "+14155552671"))))
    before = await counts(driver)
    args = ["erase", "--profile", crm.profile.id, "--request-id", "req-7", "--reason", "customer asked"]
    code, out, _ = await idgraph(*args, "--dry-run")
    plan = json.loads(out)
    assert code == 0 and plan["dry_run"] is True and len(plan["profile_ids"]) == 2
    assert set(plan) == {"dry_run", "profile_ids", "identities_deleted", "identities_kept"}
    assert {i["value"] for i in plan["identities_deleted"]} == {"john@example.com", "+14155552671"}
    assert await counts(driver) == before
    code, out, _ = await idgraph(*args)
    receipt = json.loads(out)
    assert code == 0 and receipt["profiles_deleted"] == 2 and receipt["identities_deleted"] == 2
    assert receipt["requested_by"] == "cli" and receipt["status"] == "COMPLETED"
    assert receipt["at"].endswith("Z")
    code, out, _ = await idgraph(*args)
    assert code == 0 and json.loads(out) == receipt
    assert (await counts(driver))["profiles"] == 0


async def test_demo_loads_into_an_empty_database_only(idgraph: Run, driver: AsyncDriver) -> None:
    code, out, err = await idgraph("demo")
    assert code == 0 and "demo data loaded" in out, err
    loaded = await counts(driver)
    assert loaded["profiles"] == 305
    code, out, _ = await idgraph("resolve", "email_address=john.doe@example.com")
    customer = json.loads(out)["customer"]
    assert {(p["source"], p["source_id"]) for p in customer["profiles"]} == {
        ("crm", "CRM-000001"),
        ("ivr", "CALL-000001"),
        ("webchat", "CHAT-000001"),
    }
    assert customer["attributes"]["tier"] == "Platinum" and "Premium_Support" in customer["skills"]
    assert {i["value"] for i in customer["identities"]} == {"+14155552671", "john.doe@example.com", "ACCT-98765"}
    code, out, _ = await idgraph("demo")
    assert code == 0 and "already holds profiles" in out
    assert await counts(driver) == loaded


async def test_purge_and_renormalize_commands_report_what_they_did(idgraph: Run, driver: AsyncDriver) -> None:
    await driver.execute_query(
        "CREATE (:Profile {id: 'old-1', source: 'crm', source_id: 'C-1', created_at: datetime('2020-01-01T00:00:00Z'),"
        " updated_at: datetime('2020-01-01T00:00:00Z')})-[:HAS_IDENTITY {raw: 'x', source: 'crm'}]->"
        "(:Identity {key: 'phone_number', value: '1-800-555-0199'})"
    )
    code, out, err = await idgraph("renormalize", "--dry-run")
    assert code == 0 and "dry run" in out and "folded onto the normalized value          1" in out, err
    code, out, _ = await idgraph("renormalize")
    assert code == 0 and "renormalize done" in out
    code, out, err = await idgraph("purge", "--inactive-days", "365", "--dry-run")
    assert code == 0 and out.split() == ["old-1"] and "1 profiles" in err
    code, out, _ = await idgraph("purge", "--inactive-days", "365")
    assert code == 0 and "purged 1 of 1 profiles" in out
    assert (await counts(driver))["profiles"] == 0
    code, _, err = await idgraph("purge", "--inactive-days", "0")
    assert code == 2 and "at least 1" in err


async def test_the_data_commands_record_their_changes_as_cli_and_a_rerun_records_none(
    idgraph: Run, repo: Neo4jRepository, driver: AsyncDriver, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "contacts.jsonl", CONTACTS)
    await idgraph("ingest", str(path))
    created = await repo.changes(after=0, limit=100)
    assert [(e.type, e.actor, e.customer_after) for e in created] == [(ChangeType.PROFILE_CREATED, "cli", None)] * 3
    await idgraph("ingest", str(path))  # the same file again: nothing changes, nothing is recorded
    assert await repo.last_change() == 3
    await driver.execute_query(
        "CREATE (:Profile {id: 'old-1', source: 'crm', source_id: 'C-9', created_at: datetime('2020-01-01T00:00:00Z'),"
        " updated_at: datetime('2020-01-01T00:00:00Z')})-[:HAS_IDENTITY {raw: 'x', source: 'crm'}]->"
        "(:Identity {key: 'phone_number', value: '1-800-555-0199'})"
    )
    await idgraph("renormalize")
    await idgraph("purge", "--inactive-days", "365")
    crm = next(e.profile_ids[0] for e in created if e.profile_ids[0] != "old-1")
    await idgraph("erase", "--profile", crm, "--request-id", "req-8", "--reason", "customer asked")
    later = [(e.type, e.profile_ids[:1], e.actor) for e in await repo.changes(after=3, limit=100)]
    assert later[:2] == [
        (ChangeType.PROFILE_UPDATED, ("old-1",), "cli"),  # renormalize folded its value
        (ChangeType.RETENTION_PURGE, ("old-1",), "cli"),
    ]
    assert [(t, a) for t, _, a in later[2:]] == [(ChangeType.CUSTOMER_ERASED, "cli")]
