"""A progress line for long commands: rewritten in place on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GB"


def human_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Reports records done, bytes read of the total, the rate and an ETA (from bytes, so it holds for any record
    size). On a terminal the line is redrawn (carriage return) at most every `tty_interval_s`; otherwise a plain
    line is written every `plain_interval_s`."""

    def __init__(
        self,
        stream: TextIO | None,
        total_bytes: int,
        *,
        label: str = "ingest",
        unit: str = "records",
        interactive: bool | None = None,
        tty_interval_s: float = 0.2,
        plain_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.total = total_bytes
        self.label = label
        self.unit = unit
        self.interactive = stream is not None and (stream.isatty() if interactive is None else interactive)
        self.interval = tty_interval_s if self.interactive else plain_interval_s
        self.clock = clock
        self.started = clock()
        self._last = self.started
        self._width = 0

    def line(self, records: int, done_bytes: int) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = records / elapsed
        text = f"{self.label}: {records:,} {self.unit}"
        if self.total or done_bytes:
            text += f", {human_bytes(done_bytes)}"
        if self.total:
            share = min(done_bytes / self.total, 1.0)
            text += f" of {human_bytes(self.total)} ({share:.0%})"
        text += f", {rate:,.0f} {self.unit}/s"
        if self.total and done_bytes:
            remaining = (self.total - done_bytes) / (done_bytes / elapsed)
            text += f", ETA {human_duration(remaining)}"
        return text

    def update(self, records: int, done_bytes: int, *, force: bool = False) -> None:
        if self.stream is None:
            return
        now = self.clock()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        text = self.line(records, done_bytes)
        if self.interactive:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the redrawn line, so what follows starts on a line of its own."""
        if self.stream is not None and self.interactive and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
