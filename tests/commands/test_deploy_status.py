"""`deployer status` rendering (pure): uptime, short digests, empty hosts."""

from __future__ import annotations

from deployer.docker.status import started_at as _started
from deployer.report.status import _uptime
from deployer.report.status import render_containers as render_text


def test_uptime_and_started_at() -> None:
    assert _uptime(None) == "-"
    assert _uptime(42.9) == "42s"
    assert _uptime(600) == "10m"
    assert _uptime(3 * 3600 + 5 * 60) == "3h05m"
    assert _uptime(5 * 86400) == "5d"
    t = _started({"State": {"StartedAt": "2026-11-23T04:00:00.250000000Z"}})
    assert t is not None and abs(t - 1795406400.25) < 1e-3
    assert _started({"State": {"StartedAt": "0001-01-01T00:00:00Z"}}) is None


def test_render_text() -> None:
    data = {
        "app": "shop",
        "environment": "prod",
        "hosts": [
            {
                "host": "ssh://deploy@a:22",
                "latest_release": "20261123T040000000Z-abc",
                "releases": ["20261123T040000000Z-abc", "20261122T040000000Z-def"],
                "kept_containers": 1,
                "services": [
                    {
                        "container": "shop-prod-web-1",
                        "release": "20261123T040000000Z-abc",
                        "adopted_from": None,
                        "digest": "reg/shop/web@sha256:" + "ab" * 32,
                        "commit": "0123456789abcdef",
                        "merge_request": "!12 Faster checkout",
                        "health": "healthy",
                        "uptime_seconds": 90.0,
                        "deployed_by": "ana",
                        "deployed_at": "2026-11-23T04:00:01Z",
                    }
                ],
            },
            {
                "host": "ssh://deploy@b:22",
                "latest_release": None,
                "releases": [],
                "kept_containers": 0,
                "services": [],
            },
        ],
    }
    text = render_text(data)
    assert "ssh://deploy@a:22: shop/prod · release 20261123T040000000Z-abc" in text
    row = next(line for line in text.splitlines() if line.startswith("shop-prod-web-1"))
    for cell in ("abababababab", "01234567", "!12 Faster checkout", "healthy", "90s", "ana"):
        assert cell in row
    assert "ssh://deploy@b:22: shop/prod · no release" in text
    # docs/operations.md: "`deployer status` lists the releases kept on the hosts"
    # (the names `deployer rollback --to` takes); only their count was shown
    assert (
        "releases, newest first (rollback --to RELEASE): "
        "20261123T040000000Z-abc, 20261122T040000000Z-def"
    ) in text
    assert "nothing of this app runs here" in text
