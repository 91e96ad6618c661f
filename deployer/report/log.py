"""The job log: one line per step with elapsed time, collapsible sections, tables.

In GitLab CI (``CI`` or ``GITLAB_CI`` set) sections use GitLab's collapsible section
markers; elsewhere they are plain headers, so a terminal shows no escape codes.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol, TextIO

from deployer.report.redact import Redactor

_ESC = "\x1b[0K"
_NAME_OK = re.compile(r"[^a-z0-9_.-]")


def in_gitlab_ci(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return any(
        env.get(k, "").strip().lower() not in ("", "0", "false", "no") for k in ("GITLAB_CI", "CI")
    )


def section_name(text: str) -> str:
    """GitLab accepts only ``[a-z0-9_.-]`` in section names."""
    return _NAME_OK.sub("_", text.lower()) or "section"


def _fmt_elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:5.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


class Log(Protocol):
    """What the rollout writes to: ``deployer.report.log.JobLog`` fits."""

    def line(self, text: str) -> None: ...

    def section(
        self, name: str, header: str, collapsed: bool = True
    ) -> AbstractContextManager[None]: ...


class PrintLog:
    """A plain log for callers without a job log (tests, benches)."""

    def __init__(self, write: Callable[[str], object] = print) -> None:
        self._write = write

    def line(self, text: str) -> None:
        self._write(text)

    def section(
        self, name: str, header: str, collapsed: bool = True
    ) -> AbstractContextManager[None]:
        self._write(header)
        return nullcontext()


class JobLog:
    """Writes progress to a text stream (the job log).

    ``gitlab`` forces section markers on or off; by default they are on in GitLab CI.
    ``secrets`` are masked in everything written (container logs quoted in the job log
    may print their environment). ``clock`` and ``wall`` are injectable for tests.
    """

    def __init__(
        self,
        out: TextIO,
        *,
        gitlab: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        secrets: Iterable[str] = (),
    ) -> None:
        self.out = out
        self._redact = Redactor(secrets)
        self.gitlab = in_gitlab_ci() if gitlab is None else gitlab
        self._clock = clock
        self._wall = wall
        self._start = clock()
        self._depth = 0

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    def line(self, text: str) -> None:
        """One line per step, prefixed with the time since the log started."""
        indent = "  " * self._depth if not self.gitlab else ""
        for i, part in enumerate(self._redact(text).splitlines() or [""]):
            prefix = f"[{_fmt_elapsed(self.elapsed)}] " if i == 0 else " " * 9
            self.out.write(f"{prefix}{indent}{part}\n")
        self.out.flush()

    def text(self, text: str) -> None:
        """Raw text (a plan, a table), written as is (secrets masked)."""
        text = self._redact(text)
        self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()

    @contextmanager
    def section(self, name: str, header: str, collapsed: bool = True) -> Iterator[None]:
        sid = section_name(name)
        header = self._redact(header)
        if self.gitlab:
            opts = "[collapsed=true]" if collapsed else ""
            self.out.write(f"{_ESC}section_start:{int(self._wall())}:{sid}{opts}\r{_ESC}{header}\n")
        else:
            self.out.write(f"== {header}\n")
        self.out.flush()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self.gitlab:
                self.out.write(f"{_ESC}section_end:{int(self._wall())}:{sid}\r{_ESC}\n")
            self.out.flush()

    def table(self, rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
        self.text(format_table(rows, headers))


def format_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """A plain text table with aligned columns (no box-drawing: logs are grepped)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    width = max(len(r) for r in cells)
    for r in cells:
        r.extend([""] * (width - len(r)))
    widths = [max(len(r[i]) for r in cells) for i in range(width)]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines) + "\n"
