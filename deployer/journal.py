"""The undo journal of a run: every change is written down with the call that undoes it,
and a failed run undoes them newest first. Both engines keep their changes in one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from deployer.errors import DeployerError

R = TypeVar("R")


@dataclass(frozen=True)
class Undo(Generic[R]):
    """One change of a run: what it was (for the job log) and how to undo it."""

    what: str
    action: Callable[[], R]


class Journal(Generic[R]):
    """The changes of one run on one host (or one swarm), in the order they were made."""

    def __init__(self) -> None:
        self._entries: list[Undo[R]] = []
        self._lock = threading.Lock()  # services of a wave record from their own threads

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, what: str, action: Callable[[], R]) -> None:
        with self._lock:
            self._entries.append(Undo(what, action))

    def drain(self) -> list[Undo[R]]:
        """Every change, newest first, to be undone by the caller; the journal is empty after."""
        with self._lock:
            out = list(reversed(self._entries))
            self._entries.clear()
        return out

    def undo(self, say: Callable[[str], None]) -> list[str]:
        """Undo every change, newest first; an undo that fails is said and the rest still
        run. Returns what could not be undone, with why."""
        errors: list[str] = []
        for undo in self.drain():
            try:
                undo.action()
                say(f"undone: {undo.what}")
            except DeployerError as e:
                errors.append(f"{undo.what}: {e.message}")
                say(f"could not undo {undo.what}: {e.message}")
        return errors
