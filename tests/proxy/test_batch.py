"""Switches gathered into one exec in the edge proxy (deployer/proxy/batch.py): the group
commit (unit tests of the batcher), and the script itself run in a real proxy container:
checks, writes, refusals, drains, and a health check path that cannot run commands."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import docker
import pytest

from deployer.manifest.model import EdgeProxy
from deployer.proxy.batch import Batcher, Outcome, Switch
from deployer.proxy.caddy import CaddyHost
from deployer.proxy.routes import EdgeError
from tests.conftest import Cleanup
from tests.testenv import TestEnv


def _switch(n: int) -> Switch:
    return Switch(address=f"10.0.0.{n}:80", check=None, timeout=1, path=f"/u/{n}")


def _background(fn: Callable[[], Outcome], into: list[Outcome | BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            into.append(fn())
        except BaseException as e:
            into.append(e)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_switches_asked_for_during_a_batch_go_together_in_the_next() -> None:
    batches: list[list[str]] = []
    first_running = threading.Event()
    release = threading.Event()

    def run(
        batch: Sequence[Switch],
        deliver: Callable[[int, Outcome], None],
        written: Callable[[], None],
    ) -> None:
        batches.append([s.path for s in batch])
        if len(batches) == 1:
            first_running.set()
            assert release.wait(10)
        written()
        for i, s in enumerate(batch):
            deliver(i, (True, f"before {s.path}", 0))

    b = Batcher(run)
    got: list[Outcome | BaseException] = []
    threads = [_background(lambda: b.submit(_switch(0)), got)]
    assert first_running.wait(10)
    threads += [_background(lambda n=n: b.submit(_switch(n)), got) for n in range(1, 6)]
    time.sleep(0.3)  # all five are waiting behind the first batch
    release.set()
    for t in threads:
        t.join(10)
    assert batches == [["/u/0"], [f"/u/{n}" for n in range(1, 6)]]
    assert sorted(str(g) for g in got) == sorted(str((True, f"before /u/{n}", 0)) for n in range(6))


def test_a_long_drain_holds_back_neither_the_other_slots_nor_the_next_batch() -> None:
    slow_drain = threading.Event()
    batches: list[int] = []

    def run(
        batch: Sequence[Switch],
        deliver: Callable[[int, Outcome], None],
        written: Callable[[], None],
    ) -> None:
        batches.append(len(batch))
        written()  # every slot written: the next batch may start
        if batch[0].path == "/u/1":
            assert slow_drain.wait(10)  # slot 1's old container still has a connection
        for i in range(len(batch)):
            deliver(i, (True, "", 0))

    b = Batcher(run)
    got: list[Outcome | BaseException] = []
    slow = _background(lambda: b.submit(_switch(1)), got)
    time.sleep(0.2)
    t0 = time.monotonic()
    assert b.submit(_switch(2)) == (True, "", 0)  # a batch of its own, not behind the drain
    assert time.monotonic() - t0 < 5
    assert slow.is_alive()
    slow_drain.set()
    slow.join(10)
    assert got == [(True, "", 0)]
    assert batches == [1, 1]


def test_a_failed_batch_fails_every_switch_in_it() -> None:
    def run(
        batch: Sequence[Switch],
        deliver: Callable[[int, Outcome], None],
        written: Callable[[], None],
    ) -> None:
        raise EdgeError("the proxy is gone")

    b = Batcher(run)
    with pytest.raises(EdgeError, match="the proxy is gone"):
        b.submit(_switch(0))
    with pytest.raises(EdgeError, match="the proxy is gone"):  # and the next one runs again
        b.submit(_switch(1))


# -- the script, in a real proxy container ------------------------------------------------


@pytest.fixture
def proxy(engine: docker.DockerClient, cleanup: Cleanup, app: str, proxy_image: str) -> CaddyHost:
    name = f"{app}-batch"
    c = engine.containers.run(
        proxy_image,
        [
            "sh",
            "-c",
            "mkdir -p /www && echo ok > /www/up && busybox httpd -f -p 127.0.0.1:18080 -h /www",
        ],
        name=name,
        detach=True,
    )
    cleanup.later(lambda: c.remove(force=True))
    host = CaddyHost(engine, "test-host", EdgeProxy(name=name, image=proxy_image))
    deadline = time.monotonic() + 30
    while host.reachable("127.0.0.1:18080", "/up", 1) is not None:
        assert time.monotonic() < deadline, "busybox httpd did not answer"
        time.sleep(0.2)
    return host


def _read(host: CaddyHost, path: str) -> str:
    return host.read_upstream(path)


def test_the_script_checks_writes_and_refuses_each_slot_in_one_exec(proxy: CaddyHost) -> None:
    proxy.write_upstreams({"/config/u/a": "10.9.9.9:80"})
    results: dict[int, Outcome] = {}
    written = threading.Event()
    proxy._run_switches(
        [
            Switch(
                address="127.0.0.1:18080",
                check="/up",
                timeout=2,
                path="/config/u/a",
                drain="",
                rounds=5,
            ),
            Switch(address="127.0.0.1:1", check=None, timeout=1, path="/config/u/b"),
            Switch(address="127.0.0.1:18080", check="/missing", timeout=2, path="/config/u/c"),
            Switch(address="127.0.0.1:18080", check=None, timeout=2, path="/config/u/d"),
        ],
        results.__setitem__,
        written.set,
    )
    assert written.is_set()
    assert results[0] == (True, "10.9.9.9:80", 0)  # what it held; nothing open to it
    assert results[1][0] is False and results[2][0] is False  # nothing listens; a 404
    assert results[3] == (True, "", 0)
    assert _read(proxy, "/config/u/a") == "127.0.0.1:18080"
    assert _read(proxy, "/config/u/d") == "127.0.0.1:18080"
    assert _read(proxy, "/config/u/b") == "" and _read(proxy, "/config/u/c") == ""


def test_a_health_check_path_cannot_run_commands_in_the_proxy(proxy: CaddyHost) -> None:
    for check in (
        "/up'; touch /tmp/pwned; '",
        '/up"; touch /tmp/pwned; "',
        "/up$(touch /tmp/pwned)",
    ):
        proxy.switch_upstream("/config/u/x", "127.0.0.1:18080", check, 2)
        proxy.reachable("127.0.0.1:18080", check, 2)
    code, _ = proxy.exec(["test", "-e", "/tmp/pwned"])
    assert code != 0, "a health check path ran a command in the proxy"


def test_a_drain_longer_than_the_engine_timeout_is_waited_for(
    proxy: CaddyHost, engine: docker.DockerClient, testenv: TestEnv
) -> None:
    """A connection to the old address stays open for the whole drain, and the exec says
    nothing until it ends: a client whose read timeout is shorter than the drain still
    gets the outcome (the exec's output is read without the client's timeout)."""
    container = engine.containers.get(proxy.edge.name)
    # a second server for the new address; a client holding a connection to the old one
    # (httpd waits for its request line)
    container.exec_run(["busybox", "httpd", "-p", "127.0.0.1:18082", "-h", "/www"])
    container.exec_run(["sh", "-c", "sleep 60 | busybox nc 127.0.0.1 18080"], detach=True)
    time.sleep(1)
    proxy.write_upstreams({"/config/u/old": "127.0.0.1:18080"})
    impatient = docker.DockerClient(base_url=testenv.engine_host, timeout=2)
    host = CaddyHost(impatient, "test-host", proxy.edge)
    t0 = time.monotonic()
    done, before, busy = host.switch_upstream(
        "/config/u/old", "127.0.0.1:18082", "/up", 2, drain=[], drain_timeout=4
    )
    assert (done, before) == (True, "127.0.0.1:18080")
    assert busy >= 1  # still open when the drain timed out
    assert time.monotonic() - t0 >= 3.5
