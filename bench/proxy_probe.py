"""A bounded HTTP load probe through the edge proxy: one GET every 10 ms with a Host header.

Runs in a thread of the test or bench process and talks only to the address it is given
(127.0.0.1). It reuses one keep-alive connection (the hard case for a proxy that closes
connections on a config change) or opens one per request (``keep_alive=False``). A
failed request is one refused, reset, closed unanswered, answered with a status other
than 200, or not answered within 3 s; after a failure the probe opens a new connection.
It records the longest gap between two successful requests.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field


@dataclass
class ProxyProbe:
    address: str  # "127.0.0.1:18091"
    host: str  # the Host header
    path: str = "/version"
    interval: float = 0.01
    max_requests: int = 20_000
    keep_alive: bool = True
    requests: int = 0
    failed: int = 0
    longest_gap: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    bodies: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProxyProbe:
        self._thread = threading.Thread(target=self._run, name="proxy-probe", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> ProxyProbe:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    def _run(self) -> None:
        ip, _, port = self.address.rpartition(":")
        conn: http.client.HTTPConnection | None = None
        last = time.monotonic()
        headers = {"Host": self.host}
        if not self.keep_alive:
            headers["Connection"] = "close"
        while not self._stop.is_set() and self.requests < self.max_requests:
            self.requests += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(ip, int(port), timeout=3)
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read().decode("utf-8", "replace").strip()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                now = time.monotonic()
                self.longest_gap = max(self.longest_gap, now - last)
                last = now
                self.bodies[body[:20]] = self.bodies.get(body[:20], 0) + 1
                if not self.keep_alive or resp.will_close:
                    conn.close()
                    conn = None
            except Exception as e:  # every failure is counted, by kind
                self.failed += 1
                kind = type(e).__name__ if not isinstance(e, RuntimeError) else str(e)
                self.errors[kind] = self.errors.get(kind, 0) + 1
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def summary(self) -> str:
        errs = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items()))
        return (
            f"requests={self.requests} failed={self.failed} "
            f"longest_gap={self.longest_gap * 1000:.0f}ms" + (f" ({errs})" if errs else "")
        )


def get(address: str, host: str, path: str = "/version", timeout: float = 5) -> tuple[int, str]:
    """One GET through the proxy: (status, body); (0, error) when it fails."""
    ip, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(ip, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, "Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException) as e:
        return 0, repr(e)
    finally:
        conn.close()
