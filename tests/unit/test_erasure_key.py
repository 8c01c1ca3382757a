"""The erasure key's rules without a database: key files, the fingerprint, the check of a stored key, the chain."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from app.config import Settings, create_key_file, read_key_file
from app.domain.model import IdentityKey
from app.domain.suppression import key_fingerprint, rekeyed, suppression_hash
from app.erasure_key import ErasureKey, StoredKey, unwrap_keys, wrap_keys
from app.errors import DatabaseUnavailable, ErasureKeyMismatch, InvalidInput

KEY = b"k" * 32
OTHER = b"o" * 32
PHONE = IdentityKey("phone_number", "+14155552671")


def stored(key: bytes, *, state: str = "active", generation: int = 1, wrapped: str | None = None) -> StoredKey:
    return StoredKey(key_fingerprint(key), state, generation, wrapped, None)


def test_the_fingerprint_recognises_a_key_without_revealing_it() -> None:
    fingerprint = key_fingerprint(KEY)
    assert fingerprint == key_fingerprint(KEY) != key_fingerprint(OTHER)
    assert KEY.hex() not in fingerprint and fingerprint != suppression_hash(KEY, PHONE)
    assert len(fingerprint) == 64


def test_a_generated_key_file_is_private_and_kept_on_the_next_start(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    first = settings.erasure_key()
    path = tmp_path / "var" / "erasure.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert settings.erasure_key() == first
    assert [p.name for p in path.parent.iterdir()] == ["erasure.key"]  # no temporary file left behind


def test_processes_creating_the_key_file_at_once_end_up_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "erasure.key"
    start = threading.Barrier(8)

    def create() -> None:
        start.wait()
        create_key_file(path)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = {read_key_file(path) for _ in range(3)}
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["erasure.key"]


def test_an_existing_key_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "erasure.key"
    path.write_text("x" * 40)
    create_key_file(path)
    assert read_key_file(path) == b"x" * 40


@pytest.mark.parametrize("content", ["", "\n", "short-key"])
def test_an_empty_or_short_key_file_is_refused_naming_the_file(tmp_path: Path, content: str) -> None:
    (tmp_path / "erasure.key").write_text(content)
    with pytest.raises(InvalidInput, match=r"erasure\.key.*at least 32"):
        Settings(var_dir=tmp_path).erasure_key()


@pytest.mark.parametrize("value", ["", "x" * 31])
def test_an_empty_or_short_erasure_key_variable_is_refused_naming_it(tmp_path: Path, value: str) -> None:
    settings = Settings.from_env({"IDGRAPH_ERASURE_KEY": value, "IDGRAPH_VAR_DIR": str(tmp_path)})
    with pytest.raises(InvalidInput, match=r"IDGRAPH_ERASURE_KEY.*at least 32") as refused:
        settings.erasure_key()
    assert value not in refused.value.message or not value


def test_a_key_of_32_characters_is_accepted() -> None:
    assert Settings(erasure_key_value="y" * 32).erasure_key() == b"y" * 32


def test_a_key_mismatch_is_a_database_unavailable_error() -> None:
    assert issubclass(ErasureKeyMismatch, DatabaseUnavailable)
    assert ErasureKeyMismatch("x").code == "DATABASE_UNAVAILABLE"


def test_a_key_hashes_only_once_checked_against_the_database() -> None:
    key = ErasureKey(KEY)
    with pytest.raises(ErasureKeyMismatch, match="could not check its erasure key"):
        suppression_hash(key, PHONE)
    key.accept(None)  # an empty database: this key will be recorded by the first write
    assert suppression_hash(key, PHONE) == suppression_hash(KEY, PHONE)


def test_another_key_is_refused_and_keeps_saying_why() -> None:
    key = ErasureKey(OTHER)
    with pytest.raises(ErasureKeyMismatch, match=r"does not match the database's.*IDGRAPH_ERASURE_KEY"):
        key.accept(stored(KEY))
    with pytest.raises(ErasureKeyMismatch, match="key fingerprint mismatch"):
        suppression_hash(key, PHONE)


def test_writes_are_refused_while_a_rotation_runs() -> None:
    with pytest.raises(ErasureKeyMismatch, match="being rotated"):
        ErasureKey(KEY).accept(stored(KEY, state="rotating"))


def test_a_process_whose_database_rotated_its_key_meanwhile_is_refused() -> None:
    key = ErasureKey(KEY)
    key.accept(stored(KEY))
    with pytest.raises(ErasureKeyMismatch, match="restart"):
        key.accept(stored(KEY, generation=2, wrapped=wrap_keys(KEY, [OTHER])))


def test_after_a_rotation_the_new_key_alone_hashes_like_the_re_keyed_list() -> None:
    wrapped = wrap_keys(OTHER, [KEY])
    new = ErasureKey(OTHER)
    new.accept(stored(OTHER, generation=2, wrapped=wrapped))
    assert suppression_hash(new, PHONE) == rekeyed(OTHER, suppression_hash(KEY, PHONE))
    assert new.retired() == (KEY,)


def test_retired_keys_open_only_with_the_key_that_wrapped_them() -> None:
    wrapped = wrap_keys(OTHER, [KEY])
    assert unwrap_keys(OTHER, wrapped) == (KEY,)
    with pytest.raises(ErasureKeyMismatch):
        unwrap_keys(KEY, wrapped)
    assert KEY.decode() not in wrapped
