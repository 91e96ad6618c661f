"""The deploy locks one run holds, on both engines: renewed in the background while the
run lasts (big pulls, slow health checks, a canary can outlast the lock's ttl), released
newest first at the end, also on failure. A lock that cannot be renewed or released is
said in the job log; it expires by itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from deployer.engine import keep_renewing
from deployer.errors import DeployerError

T = TypeVar("T")


class Held(Generic[T]):
    """The leases of one run. ``add`` each lease taken, ``keep()`` once all are taken,
    ``release()`` at the end (stops the renewal, releases newest first)."""

    def __init__(
        self,
        ttl: float,
        renew: Callable[[T, float], T],
        release: Callable[[T], None],
        say: Callable[[T, str], None],
    ) -> None:
        self.ttl = ttl
        self.leases: list[T] = []
        self._renew = renew
        self._release = release
        self._say = say
        self._stop: Callable[[], None] | None = None

    def add(self, lease: T) -> None:
        self.leases.append(lease)

    def _renew_all(self) -> None:
        for i, lease in enumerate(self.leases):
            try:
                self.leases[i] = self._renew(lease, self.ttl)
            except DeployerError as e:
                self._say(lease, f"could not renew the deploy lock: {e.message}")

    def keep(self) -> None:
        """Renew every lease every third of the ttl until ``release()``."""
        self._stop = keep_renewing(self._renew_all, self.ttl)

    def release(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None
        for lease in reversed(self.leases):
            try:
                self._release(lease)
            except DeployerError as e:
                self._say(lease, f"could not release the lock (it expires by itself): {e.message}")
        self.leases.clear()
