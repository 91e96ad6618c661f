"""`deployer events` read while something happens, not after it.

An engine keeps only its last 256 events in memory; a read of a past window on a shared
engine can find the test's own events pushed out by other tests' (health checks alone make
three a probe). A read whose ``--until`` lies ahead gets the events as they happen, and
nothing pushes those out: the read starts before the test acts and ends at ``--until``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

# A container's command that fills far more memory than a 16 MiB limit: the kernel kills it.
# One read of 200 MB into the buffer of dd (killed, it ends the container with 137), not
# a pipe into the shell's memory, which took up to 10 s to reach the limit at load 37-74.
HOG = "sleep 1; dd if=/dev/zero of=/dev/null bs=200000000 count=1"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def events_during(
    read: Callable[[str, str], tuple[int, str]], act: Callable[[], None], seconds: float
) -> tuple[int, str]:
    """``read(since, until)`` (a run of `events`) over the next ``seconds``, started
    before ``act()`` runs; its (exit code, output). ``act`` must be over by then."""
    start = time.time()
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(read, iso(start - 1), iso(start + seconds))
        act()
        assert time.time() < start + seconds, f"what the read had to see took over {seconds} s"
        return reading.result(timeout=seconds + 120)
