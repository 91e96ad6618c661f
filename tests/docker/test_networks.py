"""remove_network's answers to the engine states a test cannot make on demand: an
endpoint whose container is gone (left by an engine that stopped uncleanly), and a
refusal with nothing on the network (engine 20.10's wrong endpoint count, set right only
by a restart). A hand-written engine with the calls remove_network makes; the states it
can make for real (the edge proxy, another container on the network) are tested against
the engine in tests/proxy/test_down_network.py and tests/ops/test_down.py."""

from __future__ import annotations

import time
from typing import Any

import docker.errors
import pytest

from deployer import labels as L
from deployer.docker.networks import KeptNetwork, left_behind, remove_network
from deployer.errors import EXIT_LEFT_BEHIND

NET = {"Id": "n1", "Name": "shop-prod"}


def _refused() -> docker.errors.APIError:
    response: Any = type("R", (), {"status_code": 403, "reason": "Forbidden"})()
    return docker.errors.APIError(
        "403",
        response=response,
        explanation="error while removing network: network shop-prod id n1 has active endpoints",
    )


class Engine:
    """Endpoints by key (a container id, or ``ep-<id>`` for one without a container);
    ``stuck``: the engine refuses the removal with nothing on it (a wrong count)."""

    def __init__(self, endpoints: dict[str, dict[str, Any]], containers: dict[str, Any]) -> None:
        self.endpoints = endpoints
        self.containers = containers  # id -> labels, of the containers that exist
        self.stuck = False
        self.calls: list[tuple[str, ...]] = []

    def remove_network(self, net_id: str) -> None:
        self.calls.append(("remove", net_id))
        if self.endpoints or self.stuck:
            raise _refused()

    def inspect_network(self, net_id: str) -> dict[str, Any]:
        return {"Containers": {k: dict(v) for k, v in self.endpoints.items()}}

    def inspect_container(self, cid: str) -> dict[str, Any]:
        if cid not in self.containers:
            raise docker.errors.NotFound(f"no such container {cid}")
        return {"Config": {"Labels": self.containers[cid]}}

    def disconnect_container_from_network(self, who: str, net_id: str, force: bool) -> None:
        self.calls.append(("disconnect", who, str(force)))
        for key, ep in list(self.endpoints.items()):
            if who in (key, ep["Name"]):
                del self.endpoints[key]
                return
        raise docker.errors.NotFound(f"{who} is not on {net_id}")


def ours(labels: Any) -> bool:
    return labels.get(L.APP) == "shop" and labels.get(L.ENVIRONMENT) == "prod"


def test_an_endpoint_whose_container_is_gone_is_disconnected_by_its_name() -> None:
    engine = Engine({"ep-abc": {"Name": "shop-prod-web-1"}}, {})
    said: list[str] = []
    assert remove_network(engine, "h1", NET, ours, said.append) is True
    assert ("disconnect", "shop-prod-web-1", "True") in engine.calls
    assert said == [
        "h1: stale endpoint shop-prod-web-1 (its container is gone) left network shop-prod"
    ]


def test_the_proxy_and_the_apps_own_containers_are_taken_off_another_is_named() -> None:
    engine = Engine(
        {
            "c-proxy": {"Name": "deployer-proxy"},
            "c-web": {"Name": "shop-prod-web-1"},
            "c-debug": {"Name": "debug"},
        },
        {
            "c-proxy": {L.ROLE: L.ROLE_EDGE},
            "c-web": {L.APP: "shop", L.ENVIRONMENT: "prod"},
            "c-debug": {L.APP: "shop", L.ENVIRONMENT: "staging"},  # another environment's
        },
    )
    started = time.monotonic()
    kept = remove_network(engine, "h1", NET, ours, lambda _: None)
    assert time.monotonic() - started < 1  # nothing waits for a container to go by itself
    assert isinstance(kept, KeptNetwork)
    assert list(engine.endpoints) == ["c-debug"]
    assert "debug" in kept.reason
    assert kept.commands == (
        "docker network disconnect shop-prod debug",
        "docker network rm shop-prod",
    )


def test_a_refusal_with_nothing_on_the_network_ends_after_the_settle_time() -> None:
    engine = Engine({}, {})
    engine.stuck = True
    started = time.monotonic()
    kept = remove_network(engine, "h1", NET, ours, lambda _: None, settle=0.5)
    took = time.monotonic() - started
    assert isinstance(kept, KeptNetwork), kept
    assert 0.5 <= took < 5, took
    assert "nothing is on it" in kept.reason and "restart" in kept.reason
    err = left_behind("shop/prod", ["h1: container x"], [kept])
    assert err.exit_code == EXIT_LEFT_BEHIND == 6
    assert "h1: network shop-prod" in err.render() and "docker network rm shop-prod" in err.render()


def test_another_refusal_is_raised() -> None:
    class Odd(Engine):
        def remove_network(self, net_id: str) -> None:
            raise docker.errors.APIError("500", explanation="disk full")

    with pytest.raises(docker.errors.APIError, match="500"):
        remove_network(Odd({}, {}), "h1", NET, ours, lambda _: None)


def test_leaving_containers_are_waited_for_and_the_load_balancer_is_not_a_user() -> None:
    """Swarm: the tasks of the removed services leave by themselves (not disconnected);
    an overlay network's own ``lb-`` endpoint is neither taken off nor named."""
    engine = Engine(
        {"lb-shop_default": {"Name": "shop_default-endpoint"}, "c-task": {"Name": "shop_web.1"}},
        {"c-task": {L.SWARM_TASK_ID: "t1", L.STACK_NAMESPACE: "shop"}},
    )
    kept = remove_network(
        engine,
        "manager",
        NET,
        lambda _: False,
        lambda _: None,
        settle=0.5,
        leaving=lambda labels: L.SWARM_TASK_ID in labels,
    )
    assert isinstance(kept, KeptNetwork) and not kept.users, kept
    assert not [c for c in engine.calls if c[0] == "disconnect"]
    assert "shop_web.1" in kept.reason  # still on it after the wait: named
    assert "endpoint" not in kept.reason and "-f shop-prod shop_web.1" in kept.commands[0]
