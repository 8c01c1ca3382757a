"""Privacy watch: every log record of the test process and every log file of the child processes the tests start
(`idgraph serve`, ingest workers) is kept, and at the end none may hold a phone number, an email address or any raw
identity value a test sent.

A pytest plugin for the whole suite: `pytest_plugins = ("tests.failure.privacy",)` in tests/conftest.py turns on the
hooks below, which watch from the start of the session and, in pytest_sessionfinish (after every test, whatever
their order or selection, and after every fixture's teardown), fail the session when a value leaked. The failure
suite's package fixture (tests/failure/conftest.py) raises log levels while it runs; without the plugin (`-p no:...`)
it installs a watch of its own and checks it at the end of the package.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# An email address, as a log line would carry one.
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# E.164 (+ and 8 to 15 digits), and the national spellings of North American numbers the tests use:
# (415) 555-0123, 415-555-0123, 415.555.0123, 1-415-555-0123, 415 555 0123.
PHONES = (
    re.compile(r"\+\d{8,15}(?!\d)"),
    re.compile(r"\(\d{3}\)\s*\d{3}[-.\s]\d{4}(?!\d)"),
    re.compile(r"(?<![\d.:-])(?:1[-.\s])?\d{3}[-.\s]\d{3}[-.\s]\d{4}(?![\d.-])"),
)
MIN_LITERAL = 6  # shorter raw values ("12", "N/A") would match unrelated text
# The tests' own HTTP clients: they log what the tests send (gql logs whole requests at INFO), which is not what the
# service logs. Everything else in the process is watched.
CLIENT_LOGGERS = ("httpx", "httpcore", "gql", "urllib3", "websockets")


@dataclass
class Finding:
    where: str
    what: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} in {self.excerpt!r}"


class _Handler(logging.Handler):
    def __init__(self, watch: PrivacyWatch) -> None:
        super().__init__(level=logging.NOTSET)
        self.watch = watch
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".", 1)[0] in CLIENT_LOGGERS:
            return
        try:
            text = self.format(record)
        except Exception as exc:  # a record whose arguments do not fit its format: keep what can be kept
            text = f"{record.name} {record.levelname} {record.msg!r} {record.args!r} ({type(exc).__name__})"
        self.watch.add_record(text)


@dataclass
class PrivacyWatch:
    """What the tests logged, what their child processes wrote, and the raw values the tests sent."""

    records: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    values: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_record(self, text: str) -> None:
        with self._lock:
            self.records.append(text)

    def watch_file(self, path: Path) -> Path:
        with self._lock:
            if path not in self.files:
                self.files.append(path)
        return path

    def remember(self, values: Iterable[str]) -> None:
        """Raw identity values a test sent: none of them may appear in any log, whatever its spelling."""
        with self._lock:
            self.values.update(v for v in values if len(v.strip()) >= MIN_LITERAL)

    def texts(self) -> Iterator[tuple[str, str]]:
        with self._lock:
            records = list(self.records)
            files = list(self.files)
        for n, text in enumerate(records):
            yield f"log record {n}", text
        for path in files:
            try:
                content = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            for n, line in enumerate(content.splitlines(), 1):
                yield f"{path.name}:{n}", line

    def findings(self, limit: int = 20) -> list[Finding]:
        found: list[Finding] = []
        with self._lock:
            literals = sorted(self.values, key=len, reverse=True)
        sent = re.compile("|".join(map(re.escape, literals))) if literals else None
        patterns = ((EMAIL, "an email address"), *((p, "a phone number") for p in PHONES))
        for where, text in self.texts():
            for pattern, what in (*patterns, *(((sent, "a raw identity value a test sent"),) if sent else ())):
                match = pattern.search(text)
                if match:
                    found.append(Finding(where, what, _excerpt(text, match.start(), match.end())))
                    break
            if len(found) >= limit:
                break
        return found

    def report(self) -> str:
        found = self.findings()
        head = f"{len(found)} log line(s) with personal data (first {len(found)} shown):" if found else "clean"
        return "\n".join([head, *(f"  {f}" for f in found)])


def _excerpt(text: str, start: int, end: int, margin: int = 60) -> str:
    return text[max(0, start - margin) : end + margin]


class _State:
    watch: PrivacyWatch | None = None
    handler: logging.Handler | None = None
    leaked: str | None = None  # the whole-suite watch's report, when it found something


# Levels while the failure suite runs: everything our own code logs (DEBUG), the access log and third parties at INFO,
# the driver at WARNING as `idgraph` itself sets it (its DEBUG output is a protocol trace, parameters included), and
# the tests' HTTP clients at WARNING (their INFO lines would only fill pytest's captured-log reports).
_LEVELS = (
    ("", logging.INFO),
    ("app", logging.DEBUG),
    ("neo4j", logging.WARNING),
    *((name, logging.WARNING) for name in CLIENT_LOGGERS),
)
Levels = list[tuple[logging.Logger, int]]


def current() -> PrivacyWatch | None:
    """The watch in force, if any (child-process helpers register their log files with it)."""
    return _State.watch


def start() -> PrivacyWatch:
    """Install the watch, a root-logger handler, without touching log levels. Use `current()` first: one at a time."""
    assert _State.watch is None, "the privacy watch is already installed"
    watch = PrivacyWatch()
    handler = _Handler(watch)
    logging.getLogger().addHandler(handler)
    _State.watch, _State.handler = watch, handler
    return watch


def stop() -> PrivacyWatch | None:
    """Remove the handler; returns the watch (its records and files stay readable)."""
    watch, handler = _State.watch, _State.handler
    if handler is not None:
        logging.getLogger().removeHandler(handler)
    _State.watch, _State.handler = None, None
    return watch


def raise_levels() -> Levels:
    """Let INFO (DEBUG for app.*) records be emitted, so the watch sees them; returns what to restore."""
    saved: Levels = []
    for name, level in _LEVELS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(level)
    return saved


def restore_levels(saved: Levels) -> None:
    for logger, level in reversed(saved):
        logger.setLevel(level)


def remember(values: Iterable[str]) -> None:
    if _State.watch is not None:
        _State.watch.remember(values)


def watch_file(path: Path) -> Path:
    if _State.watch is not None:
        _State.watch.watch_file(path)
    return path


# -- whole-suite mode: `pytest_plugins = ("tests.failure.privacy",)` in tests/conftest.py ----------------------------
# The watch then sees every record the suite emits at the levels the suite runs with (WARNING and up by default, more
# where a test raises them, and everything in the failure suite), and every child-process log file a test registers
# with watch_file(). It leaves the levels alone: tests that count records depend on them.


def pytest_sessionstart(session: pytest.Session) -> None:
    if current() is None:
        start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    watch = stop()
    if watch is None:
        return
    if watch.findings():
        _State.leaked = watch.report()
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Runs after pytest_sessionfinish: the findings go into the summary, above the counts."""
    if _State.leaked:
        terminalreporter.write_sep("=", "privacy watch: personal data in the logs", red=True)
        terminalreporter.write_line(_State.leaked, red=True)
