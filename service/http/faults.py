"""Rate-limited fault logging: one line per cause, not one traceback per request.

During an outage every request fails the same way; logging each one buries the first (useful) line and
costs I/O exactly when the service is struggling. A cause is logged the first time (with its traceback, if
any), then at most once per ``interval_s`` with the number of repeats suppressed in between.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

# How often one cause may be logged again while it keeps happening.
FAULT_LOG_INTERVAL_S = 60.0


@dataclasses.dataclass
class _Seen:
    last_logged: float
    suppressed: int = 0


class FaultLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = FAULT_LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval_s
        self._clock = clock
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    def report(
        self, cause: str, message: str, *, level: int = logging.ERROR, exc: BaseException | None = None
    ) -> bool:
        """Log ``message`` unless ``cause`` was logged less than ``interval_s`` ago; True when logged.
        The traceback (``exc``) is attached only to the first line of a cause."""
        now = self._clock()
        with self._lock:
            seen = self._seen.get(cause)
            if seen is not None and now - seen.last_logged < self._interval:
                seen.suppressed += 1
                return False
            first = seen is None
            suppressed = seen.suppressed if seen else 0
            self._seen[cause] = _Seen(last_logged=now)
        suffix = f" ({suppressed} more since the last report)" if suppressed else ""
        self._log.log(level, "%s%s", message, suffix, exc_info=exc if first and exc is not None else None)
        return True


def cause_of(exc: BaseException) -> str:
    """A stable key for "the same fault": exception type and the innermost frame that raised it."""
    tb = exc.__traceback__
    where = ""
    while tb is not None:
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return f"{type(exc).__module__}.{type(exc).__qualname__}@{where}"


faults = FaultLog(logging.getLogger("capacity.faults"))
