"""`idgraph import` into the docker compose database, with `docker compose` simulated on a directory standing in for
the service's /data volume: the shell steps run for real (sh), the importer and the server are played by the fake.

This machine has no Docker engine, so these tests check the order of the steps, the command lines and what the swap
and restore scripts do to the volume; they do not check the image's behaviour."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.bulk import importserver
from app.bulk.importing import ImportReport
from app.config import Settings
from app.db import composeimport, localserver
from app.db.composeimport import ComposeImport
from app.db.localserver import LocalDatabaseError


@dataclass
class FakeCompose:
    volume: Path
    fail: set[str] = field(default_factory=set)  # "import", "start:N" (the N-th start fails), "swap"
    calls: list[list[str]] = field(default_factory=list)
    running: bool = True
    starts: int = 0

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        args = list(args)
        self.calls.append(args)
        if args[:1] == ["stop"]:
            self.running = False
            return self._done(0)
        if args[:1] == ["start"]:
            self.starts += 1
            if f"start:{self.starts}" in self.fail:
                return self._done(1, "container exited")
            self.running = True
            return self._done(0)
        if "--entrypoint" in args:
            script = args[args.index("-c") + 1]
            assert not (self.running and "/data/databases" in script), "the live store was moved while the server ran"
            if "swap" in self.fail and "idgraph-import/databases" in script:
                return self._done(1, "mv: permission denied")
            script = re.sub(r"(?<![\w-])/data(?=/|\s|$)", str(self.volume), script).replace(
                "chown -R neo4j:neo4j", "true"
            )
            done = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
            return self._done(done.returncode, done.stderr)
        assert "neo4j-admin" in args
        if "import" in self.fail:
            return self._done(1, "ERROR: bad input")
        for kind in ("databases", "transactions"):
            store = self.volume / "idgraph-import" / kind / "neo4j"
            store.mkdir(parents=True, exist_ok=True)
            (store / "store").write_text("imported")
        return self._done(0)

    @staticmethod
    def _done(code: int, err: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], code, "", err)


def _volume(tmp_path: Path) -> Path:
    volume = tmp_path / "data"
    for kind in ("databases", "transactions"):
        (volume / kind / "neo4j").mkdir(parents=True)
        (volume / kind / "neo4j" / "store").write_text("old")
    return volume


def _store(volume: Path) -> set[str]:
    return {(volume / kind / "neo4j" / "store").read_text() for kind in ("databases", "transactions")}


def _target(tmp_path: Path, fake: FakeCompose, monkeypatch: pytest.MonkeyPatch) -> importserver.ComposeTarget:
    monkeypatch.setattr(localserver, "wait_for_bolt", lambda settings, wait_s: None)
    monkeypatch.setattr(importserver, "_apply_schema", lambda settings, report, say: None)
    settings = Settings.from_env({"IDGRAPH_VAR_DIR": str(tmp_path / "var")})
    return importserver.ComposeTarget(settings, ComposeImport("neo4j", fake), lambda text: None)


def _load(target: importserver.ComposeTarget) -> None:
    scratch = target.scratch()
    files = scratch / "files"
    files.mkdir()
    (files / "profiles.csv").write_text("id:ID\n")
    (files / "held.csv").write_text(":START_ID,:END_ID\n")
    target.load(
        scratch,
        [("Profile", files / "profiles.csv")],
        [("HAS_IDENTITY", files / "held.csv")],
        multiline=False,
        report=ImportReport(files=1, rejects_path=scratch / "rejects"),
    )


def test_an_import_swaps_the_new_store_in_while_stopped_and_deletes_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = _volume(tmp_path)
    fake = FakeCompose(volume)
    _load(_target(tmp_path, fake, monkeypatch))
    assert _store(volume) == {"imported"}
    assert not (volume / "idgraph-before-import").exists() and not (volume / "idgraph-import").exists()
    assert fake.running
    importer = fake.calls[0]
    assert importer[:4] == ["run", "--rm", "--no-deps", "-T"]
    assert importer[5].endswith(f":{composeimport.FILES}:ro") and Path(importer[5].split(":")[0]).is_absolute()
    assert "--nodes=Profile=/idgraph-import/profiles.csv" in importer
    assert "--relationships=HAS_IDENTITY=/idgraph-import/held.csv" in importer
    assert "--additional-config=/idgraph-import/neo4j.conf" in importer
    assert [c[0] for c in fake.calls] == ["run", "stop", "run", "start", "run"]


def test_a_failed_importer_leaves_the_serving_database_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = _volume(tmp_path)
    fake = FakeCompose(volume, fail={"import"})
    with pytest.raises(LocalDatabaseError, match="old database was left as it was"):
        _load(_target(tmp_path, fake, monkeypatch))
    assert _store(volume) == {"old"}
    assert fake.running and [c[0] for c in fake.calls] == ["run"]


def test_a_store_that_does_not_start_is_replaced_by_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = _volume(tmp_path)
    fake = FakeCompose(volume, fail={"start:1"})
    with pytest.raises(LocalDatabaseError, match="starting the compose database"):
        _load(_target(tmp_path, fake, monkeypatch))
    assert _store(volume) == {"old"}
    assert fake.running and fake.starts == 2
    assert not (volume / "idgraph-before-import" / "databases" / "neo4j").exists()


def test_a_swap_that_fails_puts_the_old_store_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    volume = _volume(tmp_path)
    fake = FakeCompose(volume, fail={"swap"})
    with pytest.raises(LocalDatabaseError, match="swapping"):
        _load(_target(tmp_path, fake, monkeypatch))
    assert _store(volume) == {"old"} and fake.running


def test_the_compose_database_is_chosen_when_no_neo4j_local_runs_and_compose_is_the_local_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env({"IDGRAPH_VAR_DIR": str(tmp_path / "var"), "IDGRAPH_LOCAL_DB": "docker"})
    chosen: list[str] = []
    monkeypatch.setattr(
        importserver.ComposeTarget, "check", classmethod(lambda cls, s, say, compose: chosen.append("compose"))
    )
    monkeypatch.setattr(importserver.Target, "check", classmethod(lambda cls, s, say: chosen.append("local")))
    importserver.target_for(settings, lambda text: None)
    assert chosen == ["compose"]
