"""The Engine API fields container and Swarm mode both build from the model."""

from __future__ import annotations

from deployer.apispec import exposed_ports, healthcheck, ns
from deployer.manifest.model import Healthcheck


def test_durations_are_whole_nanoseconds_rounded_not_truncated() -> None:
    assert ns(0.5) == 500_000_000
    assert ns(1.001) == 1_001_000_000  # int(1.001 * 1e9) would be 1000999999
    assert ns(0) == 0


def test_no_healthcheck_keeps_the_image_s_and_disable_is_none() -> None:
    assert healthcheck(None) is None
    assert healthcheck(Healthcheck(test=("CMD", "true"), disable=True)) == {"Test": ["NONE"]}
    assert healthcheck(Healthcheck()) is None


def test_every_field_in_api_units() -> None:
    hc = Healthcheck(
        test=("CMD", "wget", "-q", "http://127.0.0.1/"),
        interval=1.5,
        timeout=2.0,
        retries=3,
        start_period=10.0,
        start_interval=0.5,
    )
    assert healthcheck(hc) == {
        "Test": ["CMD", "wget", "-q", "http://127.0.0.1/"],
        "Interval": 1_500_000_000,
        "Timeout": 2_000_000_000,
        "StartPeriod": 10_000_000_000,
        "StartInterval": 500_000_000,
        "Retries": 3,
    }


def test_a_bare_command_runs_through_the_shell() -> None:
    got = healthcheck(Healthcheck(test=("curl", "-f", "http://localhost/")))
    assert got == {"Test": ["CMD-SHELL", "curl -f http://localhost/"]}


def test_only_the_given_fields_are_sent() -> None:
    assert healthcheck(Healthcheck(interval=0.25)) == {"Interval": 250_000_000}


def test_exposed_ports_are_the_entries_with_their_protocol_as_compose_gives_them() -> None:
    assert exposed_ports(("8080", "53/udp", "9000-9002")) == ["8080/tcp", "53/udp", "9000-9002/tcp"]
