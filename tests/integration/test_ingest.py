"""Bulk ingestion on the real Neo4j: JSON Lines and mapped CSV, rejects, idempotent and resumable runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.bulk.ingest import default_rejects
from app.bulk.mappings import DYNAMICS, SALESFORCE, parse_mapping
from app.db.driver import AsyncDriver
from app.domain.changes import Audit
from app.domain.model import ProfileInput, ResolutionStatus
from app.errors import DatabaseUnavailable
from app.services.identity import IdentityService
from bench.datagen import records
from tests.integration.bulk_helpers import components, counts, holdings, load, read_rejects, wipe, write_jsonl

pytestmark = pytest.mark.neo4j

PHONE = "phone_number"
EMAIL = "email_address"


async def test_json_lines_are_stored_and_unusable_lines_go_to_the_rejects_file(
    service: IdentityService, tmp_path: Path
) -> None:
    await service.upsert_profile(ProfileInput("crm", ((EMAIL, "gone@example.com"),), source_id="OLD"))
    found = await service.resolve([(EMAIL, "gone@example.com")])
    assert found.customer is not None
    await service.erase(found.customer.id, request_id="erase-1", reason="asked", actor="test")
    path = write_jsonl(
        tmp_path / "contacts.jsonl",
        [
            {
                "source": "crm",
                "source_id": "C-1",
                "identities": [{"key": PHONE, "value": "1-800-555-0199"}],
                "attributes": {"tier": "Gold"},
            },
            "",
            '{"source": "crm", "source_id": ',
            {"source": "crm", "source_id": "C-2", "identities": [{"key": "fax", "value": "1"}], "extra": 1},
            {
                "source": "ivr",
                "source_id": "call-1",
                "identities": [{"key": PHONE, "value": "+18005550199"}, {"key": EMAIL, "value": "not-an-email"}],
            },
            {"source": "crm", "source_id": "C-3", "identities": [{"key": EMAIL, "value": "not-an-email"}]},
            {"source": "web", "source_id": "w-1", "identities": [{"key": EMAIL, "value": "Gone@Example.com"}]},
            {"source": "web", "identities": [{"key": EMAIL, "value": "anon@example.com"}]},
        ],
    )
    rejects = default_rejects(path)
    report = await load(service, [path], rejects, batch_size=2)
    assert (report.records, report.stored, report.created) == (7, 3, 3)
    assert report.failure is None
    assert dict(report.rejected) == {"INVALID_JSON": 1, "INVALID_RECORD": 1, "NOTHING_USABLE": 1, "SUPPRESSED": 1}
    assert dict(report.values_rejected) == {(EMAIL, "INVALID_EMAIL"): 1}
    assert report.without_source_id == 1
    lines = read_rejects(rejects)
    assert [(r["line"], r["reason"]) for r in lines] == [
        (3, "INVALID_JSON"),
        (4, "INVALID_RECORD"),
        (6, "NOTHING_USABLE"),
        (7, "SUPPRESSED"),
    ]
    assert all(r["file"] == str(path) and r["message"] for r in lines)
    assert "Gone@Example.com" in lines[3]["input"]  # the user's own line, so it can be fixed and fed again
    assert "gone@example.com" not in " ".join(r["message"] for r in lines).lower()
    crm = await service.resolve([(PHONE, "(800) 555-0199")])
    assert crm.status is ResolutionStatus.FOUND and crm.customer is not None
    assert {p.source_id for p in crm.customer.profiles} == {"C-1", "call-1"}
    assert crm.customer.attributes["tier"].value == "Gold"


async def test_running_the_same_file_again_changes_nothing(
    service: IdentityService, driver: AsyncDriver, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "gen.jsonl", records(120, seed=11))
    first = await load(service, [path], tmp_path / "r.jsonl", batch_size=25)
    before = (await holdings(driver), await counts(driver), await components(service))
    again = await load(service, [path], tmp_path / "r.jsonl", batch_size=40, workers=1)
    assert first.created == first.stored > 0 and again.created == 0 and again.stored == first.stored
    assert (await holdings(driver), await counts(driver), await components(service)) == before


async def test_an_interrupted_run_finished_by_running_it_again_equals_one_clean_run(
    service: IdentityService, driver: AsyncDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = list(records(150, seed=5))
    whole = write_jsonl(tmp_path / "whole.jsonl", rows)
    prefix = write_jsonl(tmp_path / "prefix.jsonl", rows[:61])
    await load(service, [whole], tmp_path / "r.jsonl", batch_size=30)
    clean = (await holdings(driver), await counts(driver), await components(service))

    await wipe(driver)
    await load(service, [prefix], tmp_path / "r.jsonl", batch_size=30)  # a run stopped after 61 lines
    await load(service, [whole], tmp_path / "r.jsonl", batch_size=30)
    assert (await holdings(driver), await counts(driver), await components(service)) == clean

    await wipe(driver)
    calls = 0
    real = service.ingest_batch

    async def failing(items: list[ProfileInput], *, audit: Audit) -> object:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise DatabaseUnavailable("the identity database is unavailable")
        return await real(items, audit=audit)

    monkeypatch.setattr(service, "ingest_batch", failing)
    stopped = await load(service, [whole], tmp_path / "r.jsonl", batch_size=30, workers=1)
    assert isinstance(stopped.failure, DatabaseUnavailable) and 0 < stopped.stored < 150
    monkeypatch.setattr(service, "ingest_batch", real)
    finished = await load(service, [whole], tmp_path / "r.jsonl", batch_size=30)
    assert finished.failure is None and finished.stored == 150
    assert (await holdings(driver), await counts(driver), await components(service)) == clean


async def test_lines_of_the_same_record_are_applied_in_file_order(service: IdentityService, tmp_path: Path) -> None:
    rows = [
        {
            "source": "crm",
            "source_id": "C-1",
            "identities": [{"key": EMAIL, "value": "a@example.com"}],
            "attributes": {"tier": tier},
        }
        for tier in ("Silver", "Gold", "Platinum", "Bronze", "Platinum")
    ]
    path = write_jsonl(tmp_path / "updates.jsonl", rows)
    report = await load(service, [path], tmp_path / "r.jsonl", batch_size=2, workers=3)
    assert (report.stored, report.created) == (5, 1)
    found = await service.resolve([(EMAIL, "a@example.com")])
    assert found.customer is not None and found.customer.attributes["tier"].value == "Platinum"


SALESFORCE_CSV = """\
Contact.Id,Contact.FirstName,Contact.Email,Contact.Phone,Contact.MobilePhone,Account.Id,Tier
003A,John,JOHN.DOE@example.com,(415) 555-2671,,ACCT-98765,Platinum
003B,Ann,,,+1 212 555 0100,,
003C,"Multi
Line",,,,,
003D,,not-an-email,,,,
"""

DYNAMICS_CSV = """\
contactid,fullname,emailaddress1,emailaddress2,telephone1,mobilephone,accountid,parentcustomerid
c-1,John Doe,john.doe@example.com,,,+1 (415) 555-2671,,ACCT-98765
c-2,Zed,,zed@example.org,020 7183 8750,,,
"""


async def test_a_salesforce_export_is_mapped_and_links_with_other_sources(
    service: IdentityService, tmp_path: Path
) -> None:
    sf = tmp_path / "contacts.csv"
    sf.write_text(SALESFORCE_CSV)
    report = await load(service, [sf], tmp_path / "r.jsonl", mapping=SALESFORCE)
    assert (report.records, report.stored) == (4, 3)
    assert dict(report.rejected) == {"NOTHING_USABLE": 1}
    assert [(r["line"], r["input"]["Contact.Id"]) for r in read_rejects(tmp_path / "r.jsonl")] == [(6, "003D")]
    john = await service.resolve([(EMAIL, "john.doe@example.com")])
    assert john.customer is not None
    (profile,) = john.customer.profiles
    assert (profile.source, profile.source_id) == ("salesforce", "003A")
    assert profile.attributes == {"Contact_FirstName": "John", "Tier": "Platinum"}
    assert sorted(i.value for i in profile.identities) == ["+14155552671", "ACCT-98765", "john.doe@example.com"]

    dyn = tmp_path / "dynamics.csv"
    dyn.write_text(DYNAMICS_CSV)
    report = await load(service, [dyn], tmp_path / "r.jsonl", mapping=DYNAMICS)
    assert (report.stored, sum(report.rejected.values())) == (2, 0)
    assert dict(report.values_rejected) == {(PHONE, "INVALID_PHONE"): 1}  # a UK number read in the US region
    both = await service.resolve([(PHONE, "+14155552671")])
    assert both.customer is not None
    assert {(p.source, p.source_id) for p in both.customer.profiles} == {("salesforce", "003A"), ("dynamics", "c-1")}


async def test_a_toml_mapping_file_drives_a_custom_export(service: IdentityService, tmp_path: Path) -> None:
    mapping = parse_mapping(
        'source = "zendesk"\nsource_id = "id"\ndelimiter = ";"\n'
        '[identities]\nemail_address = ["email", "alt_email"]\nphone_number = "phone"\n'
        '[attributes]\nplan = "tier"\n',
        origin="zendesk.toml",
    )
    path = tmp_path / "users.csv"
    path.write_text("id;email;alt_email;phone;plan;notes\n9;a@example.com;b@example.com;;Platinum;vip\n")
    report = await load(service, [path], tmp_path / "r.jsonl", mapping=mapping)
    assert report.stored == 1
    found = await service.resolve([(EMAIL, "b@example.com")])
    assert found.customer is not None
    assert found.customer.skills == ("Premium_Support",)
    assert dict(found.customer.profiles[0].attributes) == {"tier": "Platinum"}
