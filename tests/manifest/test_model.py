"""The config hash of the model: stable across releases for services that do not change."""

from __future__ import annotations

from deployer.manifest.model import (
    Healthcheck,
    Logging,
    Mount,
    NetworkAttachment,
    Port,
    Service,
)

# A service using every key the manifest had before the compose keys (hostname, ulimits,
# mount options, ...) were added. Its hash was computed before they were: a release that
# adds keys must not replace the containers of a service that uses none of them.
BEFORE = Service(
    name="web",
    image="r/web:1",
    command=("sh", "-c", "x"),
    environment=(("A", "1"),),
    ports=(Port(8080, 80),),
    volumes=(Mount("volume", "/data", "data"), Mount("bind", "/etc/x", "/srv/x", True)),
    networks=(NetworkAttachment("front", ("w",)),),
    healthcheck=Healthcheck(test=("CMD", "true"), interval=5.0),
    depends_on=(("db", "service_healthy"),),
    labels=(("a", "b"),),
    restart="always",
    user="1000",
    init=True,
    working_dir="/app",
    stop_signal="SIGINT",
    stop_grace_period=20.0,
    read_only=True,
    tmpfs=("/run",),
    extra_hosts=("h:10.0.0.1",),
    logging=Logging("json-file", (("max-size", "1m"),)),
    cpus=0.5,
    memory=64 * 1024 * 1024,
    cap_add=("NET_ADMIN",),
)


def test_the_hash_of_a_service_using_no_new_key_is_the_one_of_earlier_releases() -> None:
    assert BEFORE.config_hash() == "dde378dd7bb62790"
    assert Service("web", "x").config_hash() == "44136fa355b3678a"
    assert BEFORE.config_parts()["volumes"] == "3c6abcf63dbf"
    assert BEFORE.config_parts()["networks"] == "91a98a1eacb2"
    assert BEFORE.config_parts()["depends_on"] == "078bca84c9cc"
