"""What a long build is doing, on stderr: ``[build 0:42] nextpnr: routing``.

A line when a stage starts and one a minute while it lasts, so a build of a quarter of an
hour is never silent and never floods the terminal; with ``verbose``, every line the tools
print as well.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def clock_time(seconds: float) -> str:
    """``0:42``, ``16:05``, ``1:02:03``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Stage lines ``[LABEL M:SS] STAGE`` on ``stream`` (default stderr), timed from the
    moment this object is made; ``every`` seconds between repeats of a stage's line."""

    def __init__(self, label: str = "build", *, verbose: bool = False, stream=None,
                 every: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.label = label
        self.verbose = verbose
        self.stream = stream
        self.every = every
        self.clock = clock
        self.started = clock()
        self.current: str | None = None
        self.last_line = self.started

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def say(self, text: str) -> None:
        """One line with the elapsed time."""
        now = self.clock()
        self.last_line = now
        self._print(f"[{self.label} {clock_time(now - self.started)}] {text}")

    def stage(self, name: str) -> None:
        """A stage starts (said once, however often it is reported)."""
        if name != self.current:
            self.current = name
            self.say(name)

    def tick(self) -> None:
        """Repeat the current stage's line if it has lasted ``every`` seconds since the
        last line."""
        if self.current is not None and self.clock() - self.last_line >= self.every:
            self.say(self.current)

    def tool_line(self, line: str) -> None:
        """A line a tool printed: shown with ``verbose`` only."""
        if self.verbose:
            self._print(line)
