"""The local Neo4j: neo4j-local (Maven Central jars, no Docker) or docker compose when a Docker engine answers.

`idgraph db up|down|status` and the test suite use this. It starts a process and waits until Bolt answers;
it never talks Cypher itself beyond the connectivity check in app.db.driver.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.config import REPO_ROOT, Settings
from app.db.driver import ping
from app.errors import AppError

logger = logging.getLogger(__name__)

PROJECT_DIR = REPO_ROOT / "neo4j-local"
JAR = PROJECT_DIR / "target" / "neo4j-local-1.0.0.jar"
LIB = PROJECT_DIR / "target" / "lib"
MAIN_CLASS = "idgraph.neo4jlocal.Main"
JAVA_FLAGS = (
    # The flags Neo4j's own launcher passes on Java 17; without java.nio opens the page cache cannot map memory.
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-XX:+UseG1GC",
    "-XX:+ExitOnOutOfMemoryError",
)


COMPOSE_PORT = 7687  # the Bolt port docker-compose.yml publishes on 127.0.0.1

# Servers this process started: kept so they are reaped when stopped (and not reported as leaked while they run).
_children: dict[int, subprocess.Popen[bytes]] = {}


class LocalDatabaseError(AppError):
    """The local database could not be started, stopped or reached."""


@dataclass(frozen=True)
class LocalServer:
    """One neo4j-local instance: its data directory and its Bolt address."""

    home: Path
    host: str = "127.0.0.1"
    port: int = 7687
    heap: str = "1g"

    @classmethod
    def for_settings(cls, settings: Settings) -> LocalServer:
        return cls(home=settings.var_dir / "neo4j", host=settings.neo4j_host, port=settings.neo4j_port)

    @property
    def uri(self) -> str:
        return f"bolt://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home.parent / f"{self.home.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.home.parent / f"{self.home.name}.pid"

    def pid(self) -> int | None:
        """The pid of this instance's running process, or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # A stale pid file may name a pid the system has since given to another program: never report (or stop) it.
        return pid if _alive(pid) and _runs_neo4j_local(pid) else None


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def ensure_built(say: Callable[[str], None] = print) -> None:
    """Build neo4j-local with Maven when its jars are missing or older than its sources."""
    sources = [PROJECT_DIR / "pom.xml", *PROJECT_DIR.glob("src/**/*.java")]
    newest_source = max(p.stat().st_mtime for p in sources)
    if JAR.exists() and LIB.is_dir() and JAR.stat().st_mtime >= newest_source:
        return
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise LocalDatabaseError("neo4j-local needs Java 17 and Maven (mvn) on PATH, or a Docker engine")
    say("building neo4j-local with Maven (the first build downloads the Neo4j jars from Maven Central)...")
    done = subprocess.run(
        ["mvn", "-B", "-q", "-f", str(PROJECT_DIR / "pom.xml"), "package", "-DskipTests"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise LocalDatabaseError(f"the Maven build of neo4j-local failed:\n{tail}")
    JAR.touch()


def start(server: LocalServer, *, wait_s: float = 180.0, say: Callable[[str], None] = print) -> int:
    """Start neo4j-local in the background and wait until Bolt answers. Returns its pid."""
    running = server.pid()
    if running is not None:
        return running
    ensure_built(say)
    server.home.mkdir(parents=True, exist_ok=True)
    java = shutil.which("java") or "java"
    command = [java, "-Xms512m", f"-Xmx{server.heap}", *JAVA_FLAGS, "-cp", f"{JAR}:{LIB}/*", MAIN_CLASS]
    env = dict(os.environ)
    env.update(NEO4J_LOCAL_HOME=str(server.home), NEO4J_LOCAL_HOST=server.host, NEO4J_LOCAL_PORT=str(server.port))
    with server.log_file.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    _children[process.pid] = process
    server.pid_file.write_text(f"{process.pid}\n")
    say(f"starting neo4j-local on {server.uri} (pid {process.pid}, data in {server.home}, log {server.log_file})")
    deadline = time.monotonic() + wait_s
    settings = Settings(neo4j_uri=server.uri)
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            server.pid_file.unlink(missing_ok=True)
            raise LocalDatabaseError(
                f"neo4j-local exited with status {code} before it was ready; last lines of {server.log_file}:\n"
                + log_tail(server.log_file)
            )
        # A generous budget: the first Bolt query on a fresh JVM can take seconds (Cypher and JIT are cold), and a
        # short one would abandon it and start over. A server that is not listening yet refuses at once anyway.
        if asyncio.run(ping(settings, timeout_s=15.0)) is None:
            return process.pid
        time.sleep(0.5)
    stop(server)
    raise LocalDatabaseError(
        f"neo4j-local did not answer on {server.uri} within {wait_s:g}s; last lines of {server.log_file}:\n"
        + log_tail(server.log_file)
    )


def stop(server: LocalServer, *, wait_s: float = 60.0) -> bool:
    """Stop neo4j-local cleanly (SIGTERM, then SIGKILL after wait_s). False when it was not running."""
    pid = server.pid()
    if pid is None:
        server.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)
    server.pid_file.unlink(missing_ok=True)
    return True


def offline_import(
    server: LocalServer,
    nodes: Sequence[tuple[str, Path]],
    relationships: Sequence[tuple[str, Path]],
    *,
    heap: str = "1g",
    say: Callable[[str], None] = print,
) -> None:
    """Replace the server's `neo4j` database with CSV files, through Neo4j's own offline importer (`neo4j-admin
    database import full`, from the same jars). Each file is (label or relationship type, path), with an import
    header. The server must be stopped: the importer writes the store files itself, far faster than transactions,
    and the database holds only what the files hold (no schema: run the migrations after starting it)."""
    if server.pid() is not None:
        raise LocalDatabaseError(f"neo4j-local on {server.home} is running; stop it before an offline import")
    ensure_built(say)
    conf = server.home / "conf"  # the importer reads $NEO4J_CONF/neo4j.conf; neo4j-local needs no settings there
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "neo4j.conf").touch()
    java = shutil.which("java") or "java"
    command = [
        java, f"-Xmx{heap}", *JAVA_FLAGS, "-cp", f"{LIB}/*", "org.neo4j.cli.AdminTool",
        "database", "import", "full", "neo4j", "--overwrite-destination=true", "--id-type=integer",
        f"--report-file={server.home.parent / (server.home.name + '-import.report')}",
        *(f"--nodes={label}={path}" for label, path in nodes),
        *(f"--relationships={kind}={path}" for kind, path in relationships),
    ]  # fmt: skip
    env = dict(os.environ, NEO4J_HOME=str(server.home), NEO4J_CONF=str(conf))
    with server.log_file.open("ab") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    if done.returncode != 0:
        raise LocalDatabaseError(
            f"the offline import exited with status {done.returncode}; last lines of {server.log_file}:\n"
            + log_tail(server.log_file)
        )


def kill(server: LocalServer) -> None:
    """kill -9, for failure tests: no clean shutdown."""
    pid = server.pid()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A server that exited while the process that started it (another `idgraph`, a test session) still runs stays a
    # zombie until that process reaps it: it answers kill(pid, 0) but is gone.
    return _process_state(pid) != "Z"


def _process_state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat (R, S, Z, ...), or None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[0]


def _runs_neo4j_local(pid: int) -> bool:
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc here: trust the pid file
    return MAIN_CLASS.encode() in command_line


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def compose(*args: str) -> None:
    done = subprocess.run(["docker", "compose", *args], cwd=REPO_ROOT, check=False)
    if done.returncode != 0:
        raise LocalDatabaseError(f"docker compose {' '.join(args)} failed with status {done.returncode}")


def wait_for_bolt(settings: Settings, wait_s: float) -> str | None:
    deadline = time.monotonic() + wait_s
    reason = asyncio.run(ping(settings))
    while reason is not None and time.monotonic() < deadline:
        time.sleep(1.0)
        reason = asyncio.run(ping(settings))
    return reason


def use_docker(settings: Settings) -> bool:
    """IDGRAPH_LOCAL_DB: docker compose when asked to, or (auto) when a Docker engine answers; else neo4j-local."""
    if settings.local_db == "auto":
        return docker_engine_answers()
    return settings.local_db == "docker"


def database_up(settings: Settings, say: Callable[[str], None] = print) -> str:
    """Make sure the configured database answers; start one locally when it may. Idempotent."""
    reason = asyncio.run(ping(settings))
    if reason is None:
        return f"Neo4j already answers on {settings.neo4j_uri}; nothing to start"
    if not settings.neo4j_is_local:
        raise LocalDatabaseError(f"Neo4j at {settings.neo4j_uri} does not answer ({reason}); it is not ours to start")
    if use_docker(settings):
        if settings.neo4j_port != COMPOSE_PORT:
            raise LocalDatabaseError(
                f"docker compose publishes Neo4j on port {COMPOSE_PORT}, not {settings.neo4j_port}: point NEO4J_URI "
                f"at bolt://127.0.0.1:{COMPOSE_PORT}, or set IDGRAPH_LOCAL_DB=neo4j-local to run neo4j-local instead"
            )
        say("starting Neo4j with docker compose")
        compose("up", "-d", "neo4j")
        reason = wait_for_bolt(settings, 300.0)
        if reason is not None:
            raise LocalDatabaseError(f"Neo4j in docker compose did not answer: {reason}")
        return f"Neo4j (docker compose) answers on {settings.neo4j_uri}"
    server = LocalServer.for_settings(settings)
    pid = start(server, say=say)
    return f"neo4j-local answers on {settings.neo4j_uri} (pid {pid})"


def database_down(settings: Settings) -> str:
    server = LocalServer.for_settings(settings)
    if stop(server):
        return "neo4j-local stopped"
    if settings.neo4j_is_local and use_docker(settings):
        compose("stop", "neo4j")
        return "Neo4j (docker compose) stopped"
    return "neo4j-local was not running"


def database_status(settings: Settings) -> tuple[bool, str]:
    server = LocalServer.for_settings(settings)
    pid = server.pid()
    reason = asyncio.run(ping(settings))
    where = f"neo4j-local pid {pid}" if pid is not None else "no neo4j-local process of ours"
    if reason is None:
        return True, f"up: Neo4j answers on {settings.neo4j_uri} ({where})"
    return False, f"down: {reason} ({where})"
