"""Keep HiGHS's start-up banner out of the service's output.

HiGHS prints a banner to file descriptor 1 when a process builds its first solver, whatever its
output flag says; in a server that writes one JSON object per log line it would be a stray line. The
server builds that first solver once at start, with descriptor 1 pointed at /dev/null, before any
request (and any other thread) can run. The allocator (service/domain/allocator/bound.py) then only
imports highspy."""

from __future__ import annotations

import os
import sys

_done = False


def silence_solver_banner() -> None:
    global _done
    if _done:
        return
    import highspy

    sys.stdout.flush()
    saved, sink = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(sink)
    _done = True
