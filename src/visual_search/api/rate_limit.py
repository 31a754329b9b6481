"""Advisory X-FeatureRateLimit-* figures (Cloudinary's SDKs expose them), counted per process and hour.

One counter per process, whatever the number of resolvers or threads in it: the figures describe the
process a client talks to (one Lambda execution environment, or one local server). Enforcement is API
Gateway's throttling, not this counter.
"""

from __future__ import annotations

import threading
import time
from email.utils import formatdate


class _HourWindow:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hour, self.used, self.reset = 0, 0, ""

    def take(self) -> tuple[str, int]:
        """Counts one request; returns (the end of its hour as an HTTP date, requests in that hour so far).
        The date is formatted once an hour, not on every response."""
        hour = int(time.time() // 3600)
        with self._lock:
            if hour != self.hour:
                self.hour, self.used = hour, 0
                self.reset = formatdate((hour + 1) * 3600, usegmt=True)
            self.used += 1
            return self.reset, self.used


_PROCESS_WINDOW = _HourWindow()


def rate_limit_headers(limit: int) -> dict[str, str]:
    """The headers for one response, counting it in this process's window."""
    reset, used = _PROCESS_WINDOW.take()
    return {
        "X-FeatureRateLimit-Limit": str(limit),
        "X-FeatureRateLimit-Remaining": str(max(0, limit - used)),
        "X-FeatureRateLimit-Reset": reset,
    }
