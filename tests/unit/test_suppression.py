from __future__ import annotations

from app.domain.model import IdentityKey
from app.domain.suppression import profile_hash, record_hash, suppression_hash

KEY = b"k" * 32


def test_values_records_and_profile_ids_hash_apart_even_when_their_text_agrees() -> None:
    hashes = {
        suppression_hash(KEY, IdentityKey("crm", "C-1")),
        record_hash(KEY, "crm", "C-1"),
        profile_hash(KEY, "crm\x1fC-1"),
        profile_hash(KEY, "C-1"),
    }
    assert len(hashes) == 4


def test_a_record_hash_ignores_the_whitespace_upserts_trim_and_depends_on_the_key() -> None:
    assert record_hash(KEY, "crm", " C-1 ") == record_hash(KEY, "crm", "C-1")
    assert record_hash(KEY, "crm", "C-1") != record_hash(b"j" * 32, "crm", "C-1")
    assert record_hash(KEY, "crm", "C-1") != record_hash(KEY, "ivr", "C-1")
