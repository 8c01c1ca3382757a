"""idgraph installed from its wheel, outside the checkout: the Cypher files, the schema migrations, the default
strategy, the demo data and the browser libraries come with it as package data, and `idgraph` runs from there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from app.config import REPO_ROOT, Settings
from app.db.driver import AsyncDriver
from tests.erasure_key import ERASURE_KEY

pytestmark = [pytest.mark.neo4j, pytest.mark.timeout(600)]

# What would point the installed command back at the checkout or at another database.
_FOREIGN_ENV = (
    "PYTHONPATH",
    "NEO4J_URI",
    "NEO4J_DATABASE",
    "IDGRAPH_VAR_DIR",
    "IDGRAPH_TOKENS_FILE",
    "IDGRAPH_STRATEGY",
)


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode in (0, 3), f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv outside the checkout with the wheel built from it; its dependencies are the test run's own
    (a .pth line naming the running interpreter's site-packages, which holds no `app`: the checkout's editable
    install is a .pth of its own, and .pth files of a directory added that way are not read)."""
    root = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", REPO_ROOT, "--no-deps", "-q", "-w", root / "dist", cwd=root)
    [wheel] = (root / "dist").glob("idgraph-*.whl")
    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=root).stdout.strip())
    (site / "idgraph-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel, cwd=root)
    return venv


def test_the_installed_wheel_migrates_ingests_and_resolves_from_outside_the_checkout(
    installed: Path, settings: Settings, session_driver: AsyncDriver, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env.update(
        NEO4J_URI=settings.neo4j_uri,
        NEO4J_DATABASE=settings.neo4j_database,
        IDGRAPH_VAR_DIR=str(tmp_path / "var"),
        IDGRAPH_ERASURE_KEY=ERASURE_KEY,
    )
    python, idgraph = installed / "bin" / "python", installed / "bin" / "idgraph"
    where = run(
        python,
        "-c",
        "import app, app.db.queries as q, app.web.vendor as v; "
        "print(app.__file__); print(q.cypher_dir()); print(v.vendor_file('cytoscape.min.js'))",
        cwd=tmp_path,
        env=env,
    ).stdout.split()
    assert all(line.startswith(str(installed)) for line in where), where  # nothing comes from the checkout

    assert "schema is current" in run(idgraph, "migrate", cwd=tmp_path, env=env).stdout
    data = tmp_path / "wheel.jsonl"
    record = {
        "source": "crm",
        "source_id": "WHEEL-1",
        "identities": [{"key": "phone_number", "value": "+1 303 555 0190"}],
    }
    data.write_text(json.dumps(record) + "\n")
    run(idgraph, "ingest", data, cwd=tmp_path, env=env)
    found = run(idgraph, "resolve", "phone_number=(303) 555-0190", cwd=tmp_path, env=env)
    assert found.returncode == 0 and json.loads(found.stdout)["status"] == "FOUND", found.stdout
