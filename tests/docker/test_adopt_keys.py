"""Adoption's key comparison without an engine: what it cannot check, differs."""

from __future__ import annotations

from typing import Any

import pytest

from deployer.docker import adopt
from deployer.manifest.model import Logging, Service

# An inspect as the engine gives it for `busybox` started with no settings, on compose's
# default network of project "p".
CONTAINER: dict[str, Any] = {
    "Id": "a" * 64,
    "Name": "/p_web_1",
    "Config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Hostname": "a" * 12, "Labels": {}},
    "HostConfig": {
        "NetworkMode": "p_default",
        "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
        "LogConfig": {"Type": "json-file", "Config": {}},
        "IpcMode": "private",
    },
    "Mounts": [],
    "NetworkSettings": {"Networks": {"p_default": {"Aliases": ["web", "a" * 12]}}},
}
IMAGE: dict[str, Any] = {"Config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}}


def test_a_plain_container_matches_a_plain_service() -> None:
    svc = Service("web", "busybox:1")
    parts = adopt.config_parts(svc, CONTAINER, IMAGE, "p", "json-file")
    assert adopt.differing(parts, svc) == []
    assert adopt.config_hash(parts, svc) == svc.config_hash()


def test_an_unknown_default_log_driver_differs() -> None:
    svc = Service("web", "busybox:1")
    parts = adopt.config_parts(svc, CONTAINER, IMAGE, "p", None)
    assert adopt.differing(parts, svc) == ["logging"]
    assert adopt.config_hash(parts, svc) != svc.config_hash()


def test_a_key_the_comparison_does_not_know_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    svc = Service("web", "busybox:1")
    wanted = {**svc.config_parts(), "future_key": "0123456789ab"}
    monkeypatch.setattr(Service, "config_parts", lambda self: wanted)
    parts = adopt.config_parts(svc, CONTAINER, IMAGE, "p", "json-file")
    assert adopt.differing(parts, svc) == ["future_key"]


def test_an_image_default_overridden_by_the_environment_is_compared_with_the_override() -> None:
    svc = Service("web", "busybox:1", environment=(("PATH", "/usr/bin"),))
    same = adopt.config_parts(svc, CONTAINER, IMAGE, "p", "json-file")
    assert adopt.differing(same, svc) == ["environment"]
    env = {**CONTAINER, "Config": {**CONTAINER["Config"], "Env": ["PATH=/usr/bin"]}}
    assert adopt.differing(adopt.config_parts(svc, env, IMAGE, "p", "json-file"), svc) == []


def test_log_options_without_a_driver_are_the_default_driver_s() -> None:
    """compose sends `logging: {options: {max-size: 10m}}` with no driver: the engine's
    default driver takes the options."""
    svc = Service("web", "busybox:1", logging=Logging(options=(("max-size", "10m"),)))
    log = {"Type": "json-file", "Config": {"max-size": "10m"}}
    rotated = {**CONTAINER, "HostConfig": {**CONTAINER["HostConfig"], "LogConfig": log}}
    assert adopt.differing(adopt.config_parts(svc, rotated, IMAGE, "p", "json-file"), svc) == []
    assert adopt.differing(adopt.config_parts(svc, CONTAINER, IMAGE, "p", "json-file"), svc) == [
        "logging"
    ]
    plain = Service("web", "busybox:1")
    assert adopt.differing(adopt.config_parts(plain, rotated, IMAGE, "p", "json-file"), plain) == [
        "logging"
    ]
