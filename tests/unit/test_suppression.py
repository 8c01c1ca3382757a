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


class _Chain:
    def chain(self) -> tuple[bytes, ...]:
        return (b"k" * 32, b"j" * 32)


def test_hashes_stay_the_hmac_sha256_the_suppression_list_already_holds() -> None:
    # Pinned values (HMAC-SHA256 hex, then re-keyed with the next key of a chain): a change of how they are computed
    # must not change what they are, or the list would stop matching the values erased before it.
    assert suppression_hash(KEY, IdentityKey("phone_number", "+14155552671")) == (
        "f2db919e610e470002e0da219f7887630f8ccfae74df980bfebff6afe556d705"
    )
    assert record_hash(_Chain(), "crm", "C-1") == "bd2257af0f7603066bb9466394a9135643732741e923c2f2e227a220cf3afadf"
