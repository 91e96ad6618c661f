"""A top-level network is judged by the engine's name it has: the engine's network "host"
is the host's network stack (what `network_mode: host` gives, so it needs "host-network"),
and a name the engine reads as a mode ("container:NAME", the namespace of any container of
the host) is no network at all. Every way of giving that name is judged: `name:`,
`external.name`, the key of an external network, compose's `default` network, a variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.manifest import check_manifest, load_manifest

SERVICE = "    image: registry.example.com/shop/web:1.0\n"

# (top-level networks, the service's networks line, the key path refused)
HOST_FORMS = [
    ("  h: {external: true, name: host}\n", "    networks: [h]\n", "networks.h.name"),
    ("  h: {name: host}\n", "    networks: [h]\n", "networks.h.name"),
    ("  h: {external: {name: host}}\n", "    networks: [h]\n", "networks.h.external.name"),
    ("  host: {external: true}\n", "    networks: [host]\n", "networks.host"),
    # compose's implicit network of a service that names none
    ("  default: {external: true, name: host}\n", "", "networks.default.name"),
    ("  h: {external: true, name: '${EDGE_NET}'}\n", "    networks: [h]\n", "networks.h.name"),
]


def _manifest(tmp_path: Path, networks: str, joined: str, allow: str = "") -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments: {production: {}}\n"
        + (f"policy: {{allow: [{allow}]}}\n" if allow else "")
        + "networks:\n"
        + networks
        + "services:\n  web:\n"
        + SERVICE
        + joined
    )
    return path


@pytest.mark.parametrize(("networks", "joined", "where"), HOST_FORMS)
def test_the_host_network_needs_host_network(
    tmp_path: Path, networks: str, joined: str, where: str
) -> None:
    env = {"EDGE_NET": "host"}
    report = check_manifest(_manifest(tmp_path, networks, joined), None, env)
    (problem,) = report.problems
    assert problem.path == where
    assert "refused by the safety policy" in problem.message
    # the fix's words are the deployer's own, whatever value a variable gives: "host" in
    # the fix once read ${EDGE_NET}
    assert '"host-network"' in (problem.fix or "")
    allowed = _manifest(tmp_path, networks, joined, allow="host-network")
    assert check_manifest(allowed, None, env).ok


@pytest.mark.parametrize("name", ["container:db", "container:0123abcd", "service:db", " host"])
def test_a_name_the_engine_reads_as_a_mode_is_refused(tmp_path: Path, name: str) -> None:
    for allow in ("", "host-network, foreign-container"):
        path = _manifest(tmp_path, f"  n: {{external: true, name: '{name}'}}\n", "", allow)
        path.write_text(path.read_text() + "    networks: [n]\n")
        (problem,) = check_manifest(path, None, {}).problems
        assert problem.path == "networks.n.name"
        assert "not a network name" in problem.message


def test_a_compose_default_network_on_the_host_is_refused(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  web:\n" + SERVICE + "networks:\n  default:\n    name: host\n"
    )
    m = tmp_path / "deploy.yml"
    m.write_text("app: shop\ncompose: docker-compose.yml\nenvironments: {prod: {}}\n")
    (problem,) = check_manifest(m, None, {}).problems
    assert problem.path == "networks.default.name"
    assert problem.file == str(tmp_path / "docker-compose.yml")


@pytest.mark.parametrize("name", ["traefik_default", "proxy", "shop-production-default"])
def test_other_networks_pass(tmp_path: Path, name: str) -> None:
    path = _manifest(tmp_path, f"  n: {{external: true, name: {name}}}\n", "    networks: [n]\n")
    (web,) = load_manifest(path, None, {}).services
    assert [a.name for a in web.networks] == ["n"]


# (top-level network, the key refused): a macvlan or ipvlan network is the host's LAN
LAN_FORMS = [
    ("  lan: {driver: macvlan, driver_opts: {parent: eth0}}\n", "eth0"),
    ("  lan: {driver: ipvlan, driver_opts: {parent: eth0.10, ipvlan_mode: l2}}\n", "eth0.10"),
    ("  lan: {driver: macvlan}\n", "default interface"),
    ("  lan: {driver: '${LAN_DRIVER}', driver_opts: {parent: eth1}}\n", "eth1"),
]


@pytest.mark.parametrize(("networks", "parent"), LAN_FORMS)
def test_a_network_on_the_hosts_lan_needs_host_lan(
    tmp_path: Path, networks: str, parent: str
) -> None:
    env = {"LAN_DRIVER": "macvlan"}
    path = _manifest(tmp_path, networks, "    networks: [lan]\n")
    (problem,) = check_manifest(path, None, env).problems
    assert problem.path == "networks.lan.driver"
    assert problem.line == 4
    assert 'network "lan" is refused by the safety policy' in problem.message
    assert parent in problem.message and "host's LAN" in problem.message
    assert problem.fix is not None and '"host-lan"' in problem.fix
    assert check_manifest(_manifest(tmp_path, networks, "", allow="host-lan"), None, env).ok


def test_a_compose_macvlan_network_is_refused_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  web:\n"
        + SERVICE
        + "    networks: [lan]\nnetworks:\n  lan:\n    driver: macvlan\n"
        + "    driver_opts:\n      parent: enp3s0\n"
    )
    m = tmp_path / "deploy.yml"
    m.write_text("app: shop\ncompose: docker-compose.yml\nenvironments: {prod: {}}\n")
    (problem,) = check_manifest(m, None, {}).problems
    assert (problem.file, problem.line) == (str(tmp_path / "docker-compose.yml"), 7)
    assert problem.path == "networks.lan.driver" and "enp3s0" in problem.message


@pytest.mark.parametrize("driver", ["bridge", "overlay"])
def test_other_drivers_need_no_entry(tmp_path: Path, driver: str) -> None:
    path = _manifest(tmp_path, f"  lan: {{driver: {driver}}}\n", "    networks: [lan]\n")
    assert check_manifest(path, None, {}).ok


def test_a_variable_holding_host_leaves_the_words_of_the_fix(tmp_path: Path) -> None:
    """NETWORK_MODE=host once made the fix read `add "${NETWORK_MODE}-network"`; a value
    no word of the deployer's (a secret) is still put back as the variable's name."""
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments: {production: {}}\nservices:\n  web:\n"
        + SERVICE
        + "    network_mode: ${NETWORK_MODE}\n    ports: ['${PORT_SECRET}']\n"
    )
    env = {"NETWORK_MODE": "host", "PORT_SECRET": "s3cr3t-Port-77"}
    mode, port = check_manifest(path, None, env).problems
    assert mode.message == "network_mode: host is refused by the safety policy"
    assert mode.fix is not None and 'add "host-network" to' in mode.fix
    assert "${PORT_SECRET}" in port.message and "s3cr3t" not in port.render()


# (top-level networks, the service's networks line): the service joins the engine's
# default bridge, where a link is a legacy one (the linked container's environment copied)
BRIDGE_FORMS = [
    ("  default: {external: true, name: bridge}\n", ""),  # compose's implicit network
    ("  default: {name: bridge}\n", ""),
    ("  b: {external: true, name: bridge}\n", "    networks: [b]\n"),
    ("  b: {external: {name: bridge}}\n", "    networks: {b: {}}\n"),
    ("  bridge: {external: true}\n", "    networks: [bridge]\n"),
    ("  b: {external: true, name: '${NET}'}\n", "    networks: [b]\n"),
]


@pytest.mark.parametrize(("networks", "joined"), BRIDGE_FORMS)
def test_external_links_on_the_default_bridge_by_any_name_need_foreign_container(
    tmp_path: Path, networks: str, joined: str
) -> None:
    """``network_mode: bridge`` was refused with ``external_links``; joining the same
    network through ``networks:`` was not, and the engine copied the linked container's
    environment (``V_ENV_SECRET=...`` of another app's container) into this one's."""
    links = "    external_links: [other-db:v]\n"
    env = {"NET": "bridge"}
    report = check_manifest(_manifest(tmp_path, networks, joined + links), None, env)
    (problem,) = report.problems
    assert problem.path == "services.web.external_links", problem
    assert "legacy links" in problem.message and "refused by the safety policy" in problem.message
    assert '"foreign-container"' in (problem.fix or "")
    allowed = _manifest(tmp_path, networks, joined + links, allow="foreign-container")
    assert check_manifest(allowed, None, env).ok
    # without the links, the default bridge is a network like another
    assert check_manifest(_manifest(tmp_path, networks, joined), None, env).ok


def test_external_links_on_a_user_network_pass(tmp_path: Path) -> None:
    networks = "  b: {external: true, name: shared}\n"
    path = _manifest(tmp_path, networks, "    networks: [b]\n    external_links: [other-db:v]\n")
    assert check_manifest(path, None, {}).ok


@pytest.mark.parametrize("external", ["external: true, ", ""])
def test_a_name_the_engine_reads_as_a_network_id_is_refused(tmp_path: Path, external: str) -> None:
    """The engine finds a network by its full ID before its name: a network created under
    another network's ID (``name: <id>``) is not the one the containers join, that one is
    (seen on engine 20.10: ``docker network create <id of another>`` succeeds and ``docker
    run --network <id>`` joins the other network)."""
    net_id = "7b17cdc7b60d500dda47efd63f6ef4835a76477b20cd5f672f6081ab13dab600"
    for allow in ("", "foreign-network"):
        path = _manifest(tmp_path, f"  n: {{{external}name: '{net_id}'}}\n", "", allow)
        path.write_text(path.read_text() + "    networks: [n]\n")
        (problem,) = check_manifest(path, None, {}).problems
        assert problem.path == "networks.n.name"
        assert "reads as a network's ID" in problem.message
    # a name of hex digits that is no full ID is a name
    path = _manifest(tmp_path, f"  n: {{{external}name: '{net_id[:12]}'}}\n", "    networks: [n]\n")
    assert check_manifest(path, None, {}).ok


# (top-level network, the option refused, what the refusal says): a bridge network's
# options that take a host interface or open the containers past Docker's port publishing
BRIDGE_OPTION_FORMS = [
    (
        "  lan: {driver_opts: {com.docker.network.bridge.name: br0}}\n",
        "com.docker.network.bridge.name",
        "the host's interface br0 when there is one",
    ),
    (
        "  lan: {driver: bridge, driver_opts: {com.docker.network.bridge.name: '${LAN_BR}'}}\n",
        "com.docker.network.bridge.name",
        "the host's interface ${LAN_BR} when there is one",  # a variable's value is not shown
    ),
    (
        "  lan: {driver_opts: {com.docker.network.bridge.gateway_mode_ipv4: routed}}\n",
        "com.docker.network.bridge.gateway_mode_ipv4",
        "turns off NAT",
    ),
    (
        "  lan: {driver_opts: {com.docker.network.bridge.gateway_mode_ipv6: '${GW_MODE}'}}\n",
        "com.docker.network.bridge.gateway_mode_ipv6",
        "published or not",
    ),
    (
        "  lan: {driver_opts: {com.docker.network.bridge.trusted_host_interfaces: 'eth0:eth1'}}\n",
        "com.docker.network.bridge.trusted_host_interfaces",
        "the host's interfaces eth0:eth1",
    ),
]


@pytest.mark.parametrize(("networks", "option", "said"), BRIDGE_OPTION_FORMS)
def test_bridge_options_that_take_a_host_interface_or_open_ports_need_host_lan(
    tmp_path: Path, networks: str, option: str, said: str
) -> None:
    """A bridge network named after an interface of the host (``br0``, a LAN bridge) is
    made on that interface by the engine; the gateway modes ``routed`` and
    ``nat-unprotected`` and trusted host interfaces open the containers to the machines
    the host routes for, past ``ports:``. Each needs ``host-lan``, refused at its line."""
    env = {"LAN_BR": "vmbr0", "GW_MODE": "nat-unprotected"}
    path = _manifest(tmp_path, networks, "    networks: [lan]\n")
    (problem,) = check_manifest(path, None, env).problems
    assert problem.path == f'networks.lan.driver_opts["{option}"]'
    assert problem.line == 4
    assert 'network "lan" is refused by the safety policy' in problem.message
    assert said in problem.message, problem.message
    assert problem.fix is not None and '"host-lan"' in problem.fix
    allowed = _manifest(tmp_path, networks, "    networks: [lan]\n", allow="host-lan")
    assert check_manifest(allowed, None, env).ok


@pytest.mark.parametrize(
    "opts",
    [
        "com.docker.network.bridge.enable_icc: 'false'",
        "com.docker.network.bridge.enable_ip_masquerade: 'false'",
        "com.docker.network.bridge.host_binding_ipv4: 127.0.0.1",
        "com.docker.network.driver.mtu: '1400'",
        "com.docker.network.bridge.inhibit_ipv4: 'true'",
        "com.docker.network.bridge.gateway_mode_ipv4: nat",
    ],
)
def test_harmless_bridge_options_need_nothing(tmp_path: Path, opts: str) -> None:
    path = _manifest(tmp_path, f"  lan: {{driver_opts: {{{opts}}}}}\n", "    networks: [lan]\n")
    assert check_manifest(path, None, {}).ok


def test_a_bridge_option_of_another_driver_is_not_the_bridges(tmp_path: Path) -> None:
    networks = "  lan: {driver: overlay, driver_opts: {com.docker.network.bridge.name: br0}}\n"
    assert check_manifest(_manifest(tmp_path, networks, "    networks: [lan]\n"), None, {}).ok


def test_a_compose_bridge_name_is_refused_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  web:\n"
        + SERVICE
        + "    networks: [lan]\nnetworks:\n  lan:\n    driver: bridge\n"
        + "    driver_opts:\n      com.docker.network.bridge.name: virbr0\n"
        + "      com.docker.network.bridge.gateway_mode_ipv4: routed\n"
    )
    m = tmp_path / "deploy.yml"
    m.write_text("app: shop\ncompose: docker-compose.yml\nenvironments: {prod: {}}\n")
    name, mode = check_manifest(m, None, {}).problems
    compose = str(tmp_path / "docker-compose.yml")
    assert (name.file, name.line, mode.line) == (compose, 9, 10)
    assert "virbr0" in name.message and "routed" in mode.message
    m.write_text(m.read_text() + "policy: {allow: [host-lan]}\n")
    assert check_manifest(m, None, {}).ok
