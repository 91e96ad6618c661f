"""How a failed engine call reads, whatever the transport (transport.wrapped_errors)."""

from __future__ import annotations

import docker.errors
import pytest
import requests.exceptions

from deployer.docker.transport import wrapped_errors
from deployer.errors import Unreachable


def failed(raised: BaseException, name: str = "unix:///var/run/docker.sock") -> Unreachable:
    with pytest.raises(Unreachable) as e, wrapped_errors(name, "inspecting image x"):
        raise raised
    return e.value


def test_an_engine_refusal_is_the_engine_refusing_not_a_broken_ssh_connection() -> None:
    # docker.errors.APIError is an OSError (requests' HTTPError): it once read as SSH.
    e = failed(docker.errors.APIError("500", explanation="no space left on device"))
    assert e.message == (
        "host unix:///var/run/docker.sock: inspecting image x: the engine refused: "
        "no space left on device"
    )
    assert e.hint == "check the engine's log on that host"


def test_transport_failures_name_what_to_check() -> None:
    paramiko = pytest.importorskip("paramiko")
    ssh = failed(paramiko.SSHException("SSH session not active"), "ssh://deploy@h:22")
    assert "the SSH connection failed (SSH session not active)" in ssh.message
    refused = failed(requests.exceptions.ConnectionError("refused"))
    assert "cannot connect (refused)" in refused.message
    slow = failed(requests.exceptions.ReadTimeout("read timed out"))
    assert "no answer in time (read timed out)" in slow.message


def test_the_subject_is_said_as_given() -> None:
    wanted = r"^Swarm manager m: listing services: the engine refused: manager lost$"
    with (
        pytest.raises(Unreachable, match=wanted),
        wrapped_errors("m", "listing services", who="Swarm manager"),
    ):
        raise docker.errors.APIError("500", explanation="manager lost")
