"""``network_mode: service:NAME``: a restart, or a deploy of some services, that names NAME
names the services sharing its network too: a new container of NAME takes their network
namespace away. Refused (exit 2) before any host is reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import cli

MANIFEST = """\
app: shop
environments:
  prod:
    hosts: ["tcp://127.0.0.1:9"]
services:
  vpn:
    image: registry.example.com/shop/vpn:1.0
  web:
    image: registry.example.com/shop/web:1.0
    network_mode: service:vpn
"""


@pytest.mark.parametrize(
    "argv",
    [("restart", "vpn"), ("deploy", "--services", "vpn"), ("plan", "--services", "vpn")],
    ids=lambda a: a[0],
)
def test_naming_the_service_whose_network_others_share_names_them_too(
    argv: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deploy.yml"
    path.write_text(MANIFEST)
    code, out = cli(argv[0], "-f", str(path), "--env", "prod", *argv[1:])
    out += capsys.readouterr().err
    assert code == 2, out
    what = "restart" if argv[0] == "restart" else "--services"
    assert f"{what}: web share the network, PID or IPC namespace of a service named" in out
    assert "name web too" in out
    assert "Traceback" not in out
