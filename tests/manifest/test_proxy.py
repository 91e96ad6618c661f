"""The edge proxy's manifest keys: the model built, and config hashes left alone."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deployer.manifest import ManifestError, load_manifest
from deployer.manifest.model import EdgeProxy, Route


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(textwrap.dedent(text))
    return path


ROUTED = "    proxy: {host: a.example.com, port: 80}"
BASE = """\
app: shop
environments:
  production:
{env}
services:
  web:
    image: registry.example.com/shop/web:1.0
{svc}
"""


def test_routes_and_proxy_are_modelled(tmp_path: Path) -> None:
    m = load_manifest(
        write(
            tmp_path,
            BASE.format(
                env='    proxy: {http: "127.0.0.1:18091", https: false, drain_timeout: 5s}',
                svc="    proxy: {host: Shop.Example.com, port: '8080', healthcheck: /up}",
            ),
        ),
        "production",
        {},
    )
    assert m.service("web").proxy == Route(host="shop.example.com", port=8080, healthcheck="/up")
    assert m.edge == EdgeProxy(http="127.0.0.1:18091", https=None, drain_timeout=5.0)


def test_a_route_without_an_environment_proxy_uses_the_default_listeners(tmp_path: Path) -> None:
    m = load_manifest(
        write(tmp_path, BASE.format(env="    {}", svc=ROUTED)),
        "production",
        {},
    )
    assert m.edge == EdgeProxy()
    plain = load_manifest(write(tmp_path, BASE.format(env="    {}", svc="")), "production", {})
    assert plain.edge is None


def test_a_route_changes_no_config_hash(tmp_path: Path) -> None:
    """Adding or changing a route never replaces a container: it is the proxy's config."""
    plain = load_manifest(write(tmp_path, BASE.format(env="    {}", svc="")), "production", {})
    routed = load_manifest(
        write(tmp_path, BASE.format(env="    {}", svc=ROUTED)),
        "production",
        {},
    )
    assert plain.service("web").config_hash() == routed.service("web").config_hash()
    assert "proxy" not in routed.service("web").config_parts()


def test_tls_files_need_both_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE.format(
            env="    {}",
            svc="    proxy: {host: a.example.com, port: 80, tls: {certificate: /c.pem}}",
        ),
    )
    with pytest.raises(ManifestError) as e:
        load_manifest(path, "production", {})
    assert "services.web.proxy" in str(e.value)


@pytest.mark.parametrize(
    ("env", "svc", "where"),
    [
        ("    engine: swarm\n    proxy: {http: '0.0.0.0:80'}", "", "environments.production.proxy"),
        ("    engine: swarm", ROUTED, "services.web.proxy"),
    ],
)
def test_swarm_refuses_the_edge_proxy_naming_the_key_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env: str, svc: str, where: str
) -> None:
    """Swarm has its own ingress: `proxy` there is refused by validate (exit 2), with the
    file, line and key, and what to do instead; never a traceback."""
    from deployer.cli import main

    path = write(tmp_path, BASE.format(env=env, svc=svc))
    assert main(["validate", "-f", str(path)]) == 2
    out, err = capsys.readouterr()
    text = out + err
    assert where in text and "deploy.yml:" in text, text
    assert "container mode only" in text and "engine: container" in text, text
    assert "Traceback" not in text


def test_acme_for_a_wildcard_host_is_refused_naming_the_key_and_the_fix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE.format(env="    {}", svc="    proxy: {host: '*.example.com', port: 80, tls: auto}"),
    )
    with pytest.raises(ManifestError) as e:
        load_manifest(path, "production", {})
    text = str(e.value)
    assert "services.web.proxy.tls" in text and "DNS challenge" in text, text
    assert "certificate" in text  # the fix


def test_a_wildcard_host_with_certificate_files_is_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE.format(
            env="    {}",
            svc="    proxy: {host: '*.example.com', port: 80, "
            "tls: {certificate: /c.pem, key: /k.pem}}",
        ),
    )
    web = load_manifest(path, "production", {}).services[0]
    assert web.proxy is not None and web.proxy.host == "*.example.com"
