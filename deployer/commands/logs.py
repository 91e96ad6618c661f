"""`deployer logs [SERVICE...] [--since 10m] [--until T] [--tail N] [--follow] [--grep TEXT]`.

Every replica of the services on every host of the environment (or its Swarm), merged in
time order, each line prefixed ``<host> <service>.<replica> |``; colour on a terminal
only; secrets masked as in every other output. Each read is one bounded request (no
open stream: an SSH stream cannot be cancelled). ``--follow`` reads short windows again
and again, finds a replaced container by its labels, and ends cleanly (exit 0) on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

from deployer.errors import EXIT_OK, InvalidInput
from deployer.ops import Operations, ReplicaLog, merge, parse_stamped, stamp_of
from deployer.requests import LogsRequest

FOLLOW_POLL = 1.0
# A line's engine timestamp may trail the moment we read (clock of the container's
# writes): each follow window reaches back this far and drops lines already printed.
OVERLAP_NS = 2_000_000_000
_COLOURS = ("36", "33", "35", "32", "34", "31")


def time_arg(value: str | None, flag: str, now: float) -> float | None:
    """``10m`` (that long ago), or an ISO 8601 time (UTC unless it says otherwise)."""
    if not value:
        return None
    from deployer.manifest.parse import duration

    try:
        return now - duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{flag} {value}: neither a duration nor a time",
            hint=f"for example {flag} 10m, or {flag} 2026-11-29T14:00:00Z",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class Printer:
    def __init__(
        self, out: TextIO, secrets: AbstractSet[str], colour: bool, grep: str | None
    ) -> None:
        from deployer.report.redact import Redactor

        self.out = out
        self.redact = Redactor(secrets)
        self.colour = colour
        self.grep = grep
        self._colour_of: dict[str, str] = {}

    def prefix(self, log: ReplicaLog) -> str:
        text = f"{log.host} {log.service}.{log.replica}"
        if not self.colour:
            return text
        code = self._colour_of.setdefault(
            log.service, _COLOURS[len(self._colour_of) % len(_COLOURS)]
        )
        return f"\x1b[{code}m{text}\x1b[0m"

    def render(self, log: ReplicaLog) -> list[str]:
        """A printed line for each of the replica's lines ("" where --grep drops it),
        masked in one pass over them all."""
        texts = self.redact.lines(log.texts)
        head = f"{self.prefix(log)} | "
        grep = self.grep
        if grep:
            return [
                f"{head}{s} {t}\n" if grep in t else ""
                for s, t in zip(log.stamps, texts, strict=True)
            ]
        return [f"{head}{s} {t}\n" for s, t in zip(log.stamps, texts, strict=True)]

    def write(self, logs: Sequence[ReplicaLog]) -> None:
        text = "".join(merge(logs, self.render))
        if text:
            self.out.write(text)
            self.out.flush()


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT end ``--follow`` cleanly (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _newest_ns(logs: Sequence[ReplicaLog]) -> int:
    stamps = [max(log.stamps) for log in logs if log.stamps]
    return parse_stamped(max(stamps) + " ")[0] if stamps else 0


def follow(
    ops: Operations,
    services: Sequence[str],
    printer: Printer,
    since_ns: int,
    stop: threading.Event,
    printed: Sequence[ReplicaLog] = (),
    poll: float = FOLLOW_POLL,
) -> None:
    """Print new lines until ``stop`` is set: short bounded reads, never a stream. A
    replica's lines are read again from ``OVERLAP_NS`` before the newest printed; a
    container not seen before (a replacement, which becomes a replica only once healthy,
    seconds after its first lines) is read from the start of ``since_ns``."""
    start = stamp_of(since_ns)
    seen = {
        (log.source, s, t)
        for log in printed
        for s, t in zip(log.stamps, log.texts, strict=True)
        if s >= start
    }
    known = {log.source for log in printed}
    last = since_ns
    while not stop.wait(poll):
        window = max(last - OVERLAP_NS, since_ns)
        low = stamp_of(window)
        logs = ops.logs(services, since=window / 1e9, until=None, tail=None)
        if any(log.source not in known for log in logs):
            logs = ops.logs(services, since=since_ns / 1e9, until=None, tail=None)
        fresh = []
        for log in logs:
            floor = low if log.source in known else start
            known.add(log.source)
            new = [
                (s, t)
                for s, t in zip(log.stamps, log.texts, strict=True)
                if s >= floor and (log.source, s, t) not in seen
            ]
            if new:
                fresh.append(
                    dataclasses.replace(log, stamps=[s for s, _ in new], texts=[t for _, t in new])
                )
        printer.write(fresh)
        for log in fresh:
            seen.update((log.source, s, t) for s, t in zip(log.stamps, log.texts, strict=True))
        last = max(last, _newest_ns(fresh))
        keep = stamp_of(last - OVERLAP_NS)
        seen = {k for k in seen if k[1] >= keep}


def run(req: LogsRequest, out: TextIO, environ: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if environ is None else environ)
    now = time.time()
    since = time_arg(req.since, "--since", now)
    until = time_arg(req.until, "--until", now)
    if req.tail is not None and req.tail < 0:
        raise InvalidInput(f"--tail {req.tail}: must be 0 or more")
    if req.follow and until is not None:
        raise InvalidInput("--follow and --until cannot go together", hint="drop one of them")
    stop = threading.Event()
    if not req.follow:
        return _show(req, out, env, now, since, until, stop)
    # Ctrl-C or SIGTERM from the start (connecting, the first read) ends it cleanly too
    with stop_on_signals(stop):
        return _show(req, out, env, now, since, until, stop)


def _show(
    req: LogsRequest,
    out: TextIO,
    env: dict[str, str],
    now: float,
    since: float | None,
    until: float | None,
    stop: threading.Event,
) -> int:
    from deployer.commands.deploy import load
    from deployer.ops import open_for_reading, reached_all
    from deployer.report.log import in_gitlab_ci
    from deployer.report.redact import secret_values

    manifest = load(req, env)
    unknown = [s for s in req.services if s not in manifest.service_names]
    if unknown:
        raise InvalidInput(
            f"{', '.join(unknown)}: not a service of {manifest.path} "
            f"(environment {manifest.environment.name})",
            hint=f"the services are: {', '.join(manifest.service_names)}",
        )
    colour = req.color == "always" or (
        req.color == "auto" and not in_gitlab_ci(env) and sys.stdout.isatty()
    )
    printer = Printer(out, secret_values(manifest, env), colour, req.grep)
    ops = open_for_reading(manifest, env)
    try:
        logs = ops.logs(req.services, since=since, until=until, tail=req.tail)
        printer.write(logs)
        if req.follow:
            start_ns = max(int(now * 1e9), _newest_ns(logs))
            follow(ops, req.services, printer, start_ns, stop, logs)
    finally:
        ops.close()
    reached_all(ops.unreachable)
    return EXIT_OK
