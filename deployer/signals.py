"""A cancelled CI job (SIGTERM): the rollout stops at its next step and rolls back."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from deployer.report.log import JobLog


@contextlib.contextmanager
def cancel_on_sigterm(event: threading.Event, log: JobLog) -> Iterator[None]:
    """A cancelled job (SIGTERM) stops the rollout at its next step and rolls back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        log.line("SIGTERM: stopping the deploy at the next step and rolling back")
        event.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
