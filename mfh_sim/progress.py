"""A minimal text progress bar with an ETA, written to stderr (no extra dependency)."""

from __future__ import annotations

import sys
import threading
import time


class ProgressBar:
    """Counts finished runs; ``update(n)`` is thread-safe.  Silent when ``enabled`` is False."""

    def __init__(self, total: int, label: str = "runs", enabled: bool = True, stream=None):
        self.total, self.label, self.enabled = max(int(total), 1), label, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done, self.start = 0, time.perf_counter()
        self._lock = threading.Lock()
        self._last_draw = 0.0

    def update(self, count: int) -> None:
        with self._lock:
            self.done += int(count)
            now = time.perf_counter()
            if self.enabled and (now - self._last_draw > 0.2 or self.done >= self.total):
                self._last_draw = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        fraction = min(self.done / self.total, 1.0)
        elapsed = now - self.start
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else float("nan")
        bar = "#" * int(30 * fraction)
        self.stream.write(
            f"\r[{bar:<30}] {self.done}/{self.total} {self.label}  {elapsed:5.1f}s elapsed, ETA {eta:5.1f}s"
        )
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()
