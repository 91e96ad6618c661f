"""The per-host heading and table that `deployer status` prints for container and Swarm
environments alike."""

from __future__ import annotations

from deployer.report.status import host_heading, host_table

DATA = {"app": "shop", "environment": "production"}


def test_heading_names_the_place_the_app_and_the_latest_release() -> None:
    host = {"latest_release": "20260101T000000000Z-a"}
    assert (
        host_heading("mgr (Swarm manager)", DATA, host)
        == "mgr (Swarm manager): shop/production · release 20260101T000000000Z-a"
    )


def test_heading_without_a_release_says_so() -> None:
    assert host_heading("unix:///x.sock", DATA, {"latest_release": None}) == (
        "unix:///x.sock: shop/production · no release"
    )


def test_table_of_rows_and_the_empty_host() -> None:
    table = host_table([["web", "1/1"]], ["service", "replicas"])
    lines = table.splitlines()
    assert lines[0].split() == ["service", "replicas"]
    assert lines[-1].split() == ["web", "1/1"]
    assert host_table([], ["service", "replicas"]) == "  (nothing of this app runs here)\n"
