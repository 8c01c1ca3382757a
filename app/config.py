"""Settings, read once from the environment and passed explicitly; strategy file loading."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from app.domain.delivery import Delivery
from app.domain.strategy import Strategy, default_strategy, parse_strategy
from app.errors import InvalidInput

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_var_dir() -> Path:
    """var/ of the checkout; installed from a wheel (no checkout around the package), var/ of the working directory."""
    if (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT / "var"
    return Path.cwd() / "var"


_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

# The shortest erasure key accepted (bytes of IDGRAPH_ERASURE_KEY or of the key file): a generated key has 64.
MIN_ERASURE_KEY_BYTES = 32

# What `idgraph db up` starts on this machine: docker compose when a Docker engine answers, else neo4j-local.
LOCAL_DB_CHOICES = ("auto", "neo4j-local", "docker")


MAX_CHANGE_BATCH = 1000  # events per POST of the change webhook, as a page of the feed


@dataclass(frozen=True)
class Settings:
    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str | None = None
    neo4j_password: str | None = None
    neo4j_database: str = "neo4j"
    strategy_path: Path | None = None
    var_dir: Path = REPO_ROOT / "var"
    tokens_file: Path = REPO_ROOT / "var" / "tokens.json"
    erasure_key_value: str | None = None
    query_timeout_s: float = 5.0
    connect_timeout_s: float = 2.0
    max_component_nodes: int = 2000
    local_db: str = "auto"
    graphiql: bool = True
    introspection: bool = True
    max_body_bytes: int = 1_048_576
    webhook_secret: str | None = None
    retention_lease_s: float = 300.0  # automatic retention: how long a replica's lease lasts unless renewed
    change_webhook_url: str | None = None  # outbound delivery of the change feed (app/bulk/delivery.py)
    change_webhook_secret: str | None = None
    change_webhook_max_attempts: int = 8
    change_webhook_batch_size: int = 100
    change_webhook_timeout_s: float = 10.0
    change_webhook_backoff_s: float = 1.0
    change_webhook_poll_s: float = 1.0
    change_webhook_lease_s: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        var_dir = Path(env.get("IDGRAPH_VAR_DIR") or default_var_dir())
        strategy = env.get("IDGRAPH_STRATEGY")
        return cls(
            neo4j_uri=env.get("NEO4J_URI") or "bolt://127.0.0.1:7687",
            neo4j_user=env.get("NEO4J_USER") or None,
            neo4j_password=env.get("NEO4J_PASSWORD") or None,
            neo4j_database=env.get("NEO4J_DATABASE") or "neo4j",
            strategy_path=Path(strategy) if strategy else None,
            var_dir=var_dir,
            tokens_file=Path(env.get("IDGRAPH_TOKENS_FILE") or var_dir / "tokens.json"),
            erasure_key_value=env.get("IDGRAPH_ERASURE_KEY"),  # set but empty: refused by erasure_key()
            query_timeout_s=_positive_float(env, "IDGRAPH_QUERY_TIMEOUT_S", 5.0),
            connect_timeout_s=_positive_float(env, "IDGRAPH_CONNECT_TIMEOUT_S", 2.0),
            max_component_nodes=int(_positive_float(env, "IDGRAPH_MAX_COMPONENT_NODES", 2000)),
            local_db=_choice(env, "IDGRAPH_LOCAL_DB", LOCAL_DB_CHOICES),
            graphiql=_flag(env, "IDGRAPH_GRAPHIQL", True),
            introspection=_flag(env, "IDGRAPH_INTROSPECTION", True),
            max_body_bytes=int(_positive_float(env, "IDGRAPH_MAX_BODY_BYTES", 1_048_576)),
            webhook_secret=env.get("IDGRAPH_WEBHOOK_SECRET") or None,
            retention_lease_s=_positive_float(env, "IDGRAPH_RETENTION_LEASE_S", 300.0),
            change_webhook_url=env.get("IDGRAPH_CHANGE_WEBHOOK_URL") or None,
            change_webhook_secret=env.get("IDGRAPH_CHANGE_WEBHOOK_SECRET") or None,
            change_webhook_max_attempts=_whole(env, "IDGRAPH_CHANGE_WEBHOOK_MAX_ATTEMPTS", 8),
            change_webhook_batch_size=_whole(env, "IDGRAPH_CHANGE_WEBHOOK_BATCH_SIZE", 100),
            change_webhook_timeout_s=_positive_float(env, "IDGRAPH_CHANGE_WEBHOOK_TIMEOUT_S", 10.0),
            change_webhook_backoff_s=_positive_float(env, "IDGRAPH_CHANGE_WEBHOOK_BACKOFF_S", 1.0),
            change_webhook_poll_s=_positive_float(env, "IDGRAPH_CHANGE_WEBHOOK_POLL_S", 1.0),
            change_webhook_lease_s=_positive_float(env, "IDGRAPH_CHANGE_WEBHOOK_LEASE_S", 60.0),
        )

    @property
    def neo4j_host(self) -> str:
        return urlsplit(self.neo4j_uri).hostname or "127.0.0.1"

    @property
    def neo4j_port(self) -> int:
        return urlsplit(self.neo4j_uri).port or 7687

    @property
    def neo4j_is_local(self) -> bool:
        """True when the database is on this machine, so `idgraph db up` may start one."""
        return self.neo4j_host in _LOOPBACK_HOSTS

    def erasure_key(self) -> bytes:
        """The HMAC key of the suppression list: IDGRAPH_ERASURE_KEY, else $IDGRAPH_VAR_DIR/erasure.key, generated once
        (atomically, mode 0600). An empty or short key is refused, naming where it came from."""
        if self.erasure_key_value is not None:
            return checked_erasure_key(self.erasure_key_value.encode(), "IDGRAPH_ERASURE_KEY")
        path = self.var_dir / "erasure.key"
        if not path.exists():
            create_key_file(path)
        return read_key_file(path)

    def change_delivery(self) -> Delivery | None:
        """Outbound delivery of the change feed, when IDGRAPH_CHANGE_WEBHOOK_URL is set. Refused, naming the variable:
        a URL that is not http(s)://host..., a URL without a secret, a lease shorter than three POST timeouts."""
        if self.change_webhook_url is None:
            return None
        parts = urlsplit(self.change_webhook_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("IDGRAPH_CHANGE_WEBHOOK_URL must be an http:// or https:// URL with a host")
        if not self.change_webhook_url.isascii() or any(c.isspace() for c in self.change_webhook_url):
            raise InvalidInput("IDGRAPH_CHANGE_WEBHOOK_URL must be ASCII without spaces (percent-encode the rest)")
        if not self.change_webhook_secret:
            raise InvalidInput(
                "IDGRAPH_CHANGE_WEBHOOK_SECRET must be set with IDGRAPH_CHANGE_WEBHOOK_URL (it signs each POST)"
            )
        if not 1 <= self.change_webhook_batch_size <= MAX_CHANGE_BATCH:
            raise InvalidInput(f"IDGRAPH_CHANGE_WEBHOOK_BATCH_SIZE must be between 1 and {MAX_CHANGE_BATCH}")
        if self.change_webhook_lease_s < 3 * self.change_webhook_timeout_s:
            raise InvalidInput(
                "IDGRAPH_CHANGE_WEBHOOK_LEASE_S must be at least 3 times IDGRAPH_CHANGE_WEBHOOK_TIMEOUT_S "
                f"({self.change_webhook_lease_s:g} < 3 x {self.change_webhook_timeout_s:g})"
            )
        return Delivery(
            url=self.change_webhook_url,
            secret=self.change_webhook_secret,
            batch_size=self.change_webhook_batch_size,
            max_attempts=self.change_webhook_max_attempts,
            timeout_s=self.change_webhook_timeout_s,
            backoff_s=self.change_webhook_backoff_s,
            poll_s=self.change_webhook_poll_s,
            lease_s=self.change_webhook_lease_s,
        )

    def strategy(self) -> Strategy:
        """The operator's strategy (IDGRAPH_STRATEGY) or the packaged default; bad files are refused by name."""
        text = self.strategy_text()
        if text is None:
            return default_strategy()
        return parse_strategy(text, origin=str(self.strategy_path))

    def strategy_text(self) -> str | None:
        """The operator's strategy file, or None for the packaged default."""
        if self.strategy_path is None:
            return None
        try:
            return self.strategy_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"IDGRAPH_STRATEGY: cannot read {self.strategy_path}: {exc.strerror}") from exc


def checked_erasure_key(key: bytes, origin: str) -> bytes:
    """The key, if it is long enough to keep the suppression hashes unguessable; `origin` names where it came from."""
    if len(key) < MIN_ERASURE_KEY_BYTES:
        what = "is empty" if not key else f"is {len(key)} bytes long"
        raise InvalidInput(f"{origin}: the erasure key {what}; it needs at least {MIN_ERASURE_KEY_BYTES} characters")
    return key


def read_key_file(path: Path) -> bytes:
    """An erasure key file's key (surrounding whitespace ignored), refused when missing, empty or short."""
    try:
        return checked_erasure_key(path.read_bytes().strip(), str(path))
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the erasure key file: {exc.strerror}") from exc


def create_key_file(path: Path) -> None:
    """Write a fresh random key to `path` (mode 0600) unless a key file is already there. The key is written whole to
    a temporary file first and linked into place, so two processes starting at once end up sharing one key file,
    never reading a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".erasure-key-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
            out.flush()
            os.fsync(out.fileno())
        os.link(temporary, path)  # fails if the file exists: the first process's key wins
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise InvalidInput(f"{name} must be positive, got {raw!r}")
    return value


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isascii() or not raw.strip().isdigit() or int(raw) < 1:
        raise InvalidInput(f"{name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """The variable's value, one of `choices`; the first choice when unset."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return choices[0]
    if raw not in choices:
        raise InvalidInput(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"{name} must be true or false, got {raw!r}")
