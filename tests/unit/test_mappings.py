"""CSV field mappings: the presets, the user's TOML files, and how a row becomes an ingest record."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.bulk.ingest import check_mapping
from app.bulk.mappings import DYNAMICS, SALESFORCE, attribute_name, load_mapping, parse_mapping
from app.domain.strategy import default_strategy
from app.domain.validation import profile_input_from_record
from app.errors import InvalidInput

SALESFORCE_ROW = {
    "Contact.Id": "003A000001",
    "Contact.FirstName": "John",
    "Contact.Email": "John.Doe@Example.com",
    "Contact.Phone": "(415) 555-2671",
    "Contact.MobilePhone": "+1 415 555 0000",
    "Account.Id": "ACCT-98765",
    "Contact.Tier__c": "Platinum",
    "Contact.Fax": "",
}


def test_salesforce_preset_maps_contact_columns_and_keeps_the_rest_as_attributes() -> None:
    record = SALESFORCE.record(SALESFORCE_ROW)
    assert record["source"] == "salesforce"
    assert record["source_id"] == "003A000001"
    assert record["identities"] == [
        {"key": "email_address", "value": "John.Doe@Example.com"},
        {"key": "phone_number", "value": "(415) 555-2671"},
        {"key": "phone_number", "value": "+1 415 555 0000"},
        {"key": "account_id", "value": "ACCT-98765"},
    ]
    assert record["attributes"] == {"Contact_FirstName": "John", "Contact_Tier__c": "Platinum"}
    profile_input_from_record(record)  # a valid ingest record


def test_empty_cells_are_skipped_not_stored_as_null() -> None:
    record = SALESFORCE.record({"Contact.Id": "003B", "Contact.Email": "  ", "Contact.Phone": "", "Notes": " "})
    assert record == {"source": "salesforce", "source_id": "003B", "identities": [], "attributes": {}}


def test_a_row_without_its_id_cell_has_no_source_id() -> None:
    record = SALESFORCE.record({"Contact.Id": "", "Contact.Email": "a@example.com"})
    assert "source_id" not in record


def test_dynamics_preset_takes_every_email_and_phone_but_only_the_first_account() -> None:
    record = DYNAMICS.record(
        {
            "contactid": "6f3a-...-01",
            "fullname": "Ann Smith",
            "emailaddress1": "ann@example.com",
            "emailaddress2": "ann.smith@example.org",
            "telephone1": "+44 20 7183 8750",
            "mobilephone": "07700 900123",
            "accountid": "",
            "parentcustomerid": "b1c2-account",
        }
    )
    assert record["source"] == "dynamics"
    assert record["source_id"] == "6f3a-...-01"
    keys = [(i["key"], i["value"]) for i in record["identities"]]
    assert keys == [
        ("email_address", "ann@example.com"),
        ("email_address", "ann.smith@example.org"),
        ("phone_number", "+44 20 7183 8750"),
        ("phone_number", "07700 900123"),
        ("account_id", "b1c2-account"),
    ]
    assert record["attributes"] == {"fullname": "Ann Smith"}
    both = DYNAMICS.record({"contactid": "c", "accountid": "A-1", "parentcustomerid": "A-2"})
    assert [i["value"] for i in both["identities"]] == ["A-1"]


def test_a_header_without_the_id_column_or_any_identity_column_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"Contact\.Id"):
        SALESFORCE.check_header(["Contact.Email"], "f.csv")
    with pytest.raises(InvalidInput, match="none of the mapping"):
        SALESFORCE.check_header(["Contact.Id", "Name"], "f.csv")
    with pytest.raises(InvalidInput, match="repeats column"):
        SALESFORCE.check_header(["Contact.Id", "Contact.Email", "Contact.Email"], "f.csv")


def test_column_names_become_valid_attribute_names() -> None:
    assert attribute_name("Contact.Tier__c") == "Contact_Tier__c"
    assert attribute_name("2nd phone") == "_2nd_phone"
    assert attribute_name("x" * 80) == "x" * 64


TOML = """
source = "zendesk"
source_id = "id"
delimiter = ";"

[identities]
email_address = ["email", "alt_email"]
phone_number = "phone"
account_id = { first_of = ["account", "org"] }

[attributes]
plan = "tier"
"Last Order" = "last_order_date"
"""


def test_a_toml_mapping_names_columns_per_key_and_attributes() -> None:
    mapping = parse_mapping(TOML, origin="zendesk.toml", name="zendesk")
    assert mapping.delimiter == ";"
    record = mapping.record(
        {
            "id": "42",
            "email": "a@example.com",
            "alt_email": "b@example.com",
            "phone": "",
            "account": "",
            "org": "ORG-1",
            "plan": "Platinum",
            "Last Order": "2026-11-01",
            "notes": "not mapped",
        }
    )
    assert record == {
        "source": "zendesk",
        "source_id": "42",
        "identities": [
            {"key": "email_address", "value": "a@example.com"},
            {"key": "email_address", "value": "b@example.com"},
            {"key": "account_id", "value": "ORG-1"},
        ],
        "attributes": {"tier": "Platinum", "last_order_date": "2026-11-01"},
    }


def test_a_toml_mapping_with_rest_keeps_other_columns_except_ignored_ones() -> None:
    mapping = parse_mapping(
        'source = "shop"\nsource_id = "id"\nattributes = "rest"\nignore = ["password_hash"]\n'
        '[identities]\nemail_address = "email"\n',
        origin="shop.toml",
    )
    record = mapping.record({"id": "1", "email": "a@example.com", "password_hash": "x", "city": "Paris"})
    assert record["attributes"] == {"city": "Paris"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('source = "s"\nsourceid = "id"\n[identities]\nemail_address = "e"\n', "unknown key sourceid"),
        ('source = "s"\ncolour = 1\nshape = 2\n[identities]\nemail_address = "e"\n', "unknown keys colour, shape"),
        ('source_id = "id"\n[identities]\nemail_address = "e"\n', "source: required"),
        ('source = "s"\n', "identities: required"),
        ('source = "s"\n[identities]\nemail_address = 3\n', "identities.email_address"),
        ('source = "s"\n[identities]\nemail_address = { last_of = ["e"] }\n', "unknown: last_of"),
        ('source = "s"\nattributes = 3\n[identities]\nemail_address = "e"\n', "attributes: must be"),
        ('source = "s"\n[identities]\nemail_address = "e"\n[attributes]\nx = "bad name"\n', "attributes.x"),
        ('source = "s"\ndelimiter = ";;"\n[identities]\nemail_address = "e"\n', "delimiter"),
        ('source = "s"\nencoding = "klingon"\n[identities]\nemail_address = "e"\n', "unknown encoding"),
        ('source = "s"\nencoding = "utf-16"\n[identities]\nemail_address = "e"\n', "line by line"),
        ("source = \n", "not valid TOML"),
    ],
)
def test_a_bad_toml_mapping_is_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_mapping(text, origin="m.toml")
    assert caught.value.message.startswith("m.toml: ")


def test_presets_load_by_name_and_files_by_path(tmp_path: Path) -> None:
    assert load_mapping("salesforce") is SALESFORCE
    path = tmp_path / "zendesk.toml"
    path.write_text(TOML)
    assert load_mapping(str(path)).source == "zendesk"
    with pytest.raises(InvalidInput, match="neither a preset"):
        load_mapping(str(tmp_path / "missing.toml"))


def test_a_mapping_key_the_strategy_does_not_know_is_refused() -> None:
    mapping = parse_mapping('source = "s"\n[identities]\nfax_number = "fax"\n', origin="m.toml", name="m")
    with pytest.raises(InvalidInput, match="fax_number is not an identity attribute"):
        check_mapping(mapping, default_strategy())
    check_mapping(SALESFORCE, default_strategy())
    check_mapping(DYNAMICS, default_strategy())
