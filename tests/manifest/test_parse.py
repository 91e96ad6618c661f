"""Formats: durations, sizes, ports, mounts, image references."""

from __future__ import annotations

import pytest

from deployer.manifest import parse
from deployer.manifest.model import Mount, Port


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("1m30s", 90),
        ("500ms", 0.5),
        ("2h", 7200),
        ("1.5s", 1.5),
        ("0", 0),
        (10, 10),
        (2.5, 2.5),
        ("100us", 0.0001),
    ],
)
def test_duration(text: object, seconds: float) -> None:
    assert parse.duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5 seconds", "10x", "", "s", "-1s", "1m 30s", True, -3])
def test_bad_duration(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse.duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512m", 512 * 2**20),
        ("1g", 2**30),
        ("1GB", 2**30),
        ("100k", 102400),
        ("1024", 1024),
        (2048, 2048),
        ("1.5g", int(1.5 * 2**30)),
    ],
)
def test_size(text: object, size: int) -> None:
    assert parse.size(text) == size


@pytest.mark.parametrize("text", ["lots", "1x", "-1", -5, True, "m"])
def test_bad_size(text: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse.size(text)


@pytest.mark.parametrize(
    ("text", "ports"),
    [
        ("80", [Port(80)]),
        (80, [Port(80)]),
        ("8080:80", [Port(80, 8080)]),
        ("127.0.0.1:8080:80", [Port(80, 8080, "127.0.0.1")]),
        ("127.0.0.1::80", [Port(80, None, "127.0.0.1")]),
        ("53:53/udp", [Port(53, 53, protocol="udp")]),
        ("[::1]:8443:443", [Port(443, 8443, "::1")]),
        ("7000-7001:8000-8001", [Port(8000, 7000), Port(8001, 7001)]),
        ("9000-9001", [Port(9000), Port(9001)]),
        # a host port range for one container port: the engine binds a free one of it
        ("8000-8002:80", [Port(80, 8000, published_end=8002)]),
        ("127.0.0.1:8000-8001:80/udp", [Port(80, 8000, "127.0.0.1", "udp", 8001)]),
        # an empty IP (`${BIND:-}:443:443`) is every address, as compose reads it
        (":443:443", [Port(443, 443)]),
    ],
)
def test_port_short(text: str | int, ports: list[Port]) -> None:
    assert parse.port_short(text) == ports


@pytest.mark.parametrize(
    "text",
    [
        "80:80:80",
        "70000:80",
        "0:80",
        "a:b",
        "80/sctp",
        "1:2:3:4",
        "8000-8002:80-81",
        "9-1:9-1",
        "[::1]8080:80",
    ],
)
def test_bad_port(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a port mapping|protocol"):
        parse.port_short(text)


@pytest.mark.parametrize(
    ("text", "mount"),
    [
        ("data:/data", Mount("volume", "/data", "data")),
        ("data:/data:ro", Mount("volume", "/data", "data", True)),
        ("/srv/x/../y:/y:rw", Mount("bind", "/y", "/srv/y")),
        ("/:/host:ro,rslave", Mount("bind", "/host", "/", True, propagation="rslave")),
        ("/cache", Mount("volume", "/cache")),
        # a word compose does not know is ignored, as compose ignores it (the reader warns)
        ("a:/b:rmaster", Mount("volume", "/b", "a")),
        ("a:/b:roz", Mount("volume", "/b", "a")),
    ],
)
def test_volume_short(text: str, mount: Mount) -> None:
    assert parse.volume_short(text) == mount


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("./data:/data", "relative"),
        ("~/data:/data", "relative"),
        ("data:rel", "absolute"),
        ("cache", "not a mount"),
        ("a:/b:rshared", "applies to bind mounts"),
        ("/srv:/b:nocopy", "applies to volumes"),
        ("a:/b:ro:x", "too many"),
        ("bad name!:/x", "not a volume name"),
    ],
)
def test_bad_volume(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse.volume_short(text)


@pytest.mark.parametrize(
    ("ref", "tag", "digest"),
    [
        ("postgres", None, None),
        ("postgres:16", "16", None),
        ("registry.example.com:5000/shop/web:abc1234", "abc1234", None),
        ("localhost/x_y__z/a-b:1.0", "1.0", None),
        ("x@sha256:" + "a" * 64, None, "sha256:" + "a" * 64),
        ("r.io/x:1@sha256:" + "b" * 64, "1", "sha256:" + "b" * 64),
    ],
)
def test_image(ref: str, tag: str | None, digest: str | None) -> None:
    assert parse.image(ref) == (tag, digest)


@pytest.mark.parametrize(
    ("ref", "hint"),
    [
        ("Shop/Web", "lowercase"),
        ("web:", "tag after"),
        ("", "empty"),
        ("a//b", ""),
        ("x:" + "t" * 200, ""),
        ("web@sha256:short", ""),
        ("-web", ""),
    ],
)
def test_bad_image(ref: str, hint: str) -> None:
    with pytest.raises(ValueError, match="not a valid image reference") as exc:
        parse.image(ref)
    assert hint in str(exc.value)


def test_command_splits_like_a_shell() -> None:
    assert parse.command('bin/x --a "b c"') == ("bin/x", "--a", "b c")
    assert parse.command(["a", 1]) == ("a", "1")
    with pytest.raises(ValueError, match="split"):
        parse.command('bin/x "unclosed')


def test_a_host_port_range_is_what_the_engine_takes() -> None:
    (port,) = parse.port_short("8000-8002:80")
    assert (port.host_port, port.host_port_count) == ("8000-8002", 3)
    assert (Port(80, 8080).host_port, Port(80, 8080).host_port_count) == ("8080", 1)
    assert (Port(80).host_port, Port(80).host_port_count) == ("", 0)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("db", ("service", "db", "")),
        ("db:ro", ("service", "db", "ro")),
        ("service:db", ("service", "db", "")),
        ("service:db:rw", ("service", "db", "rw")),
        ("container:legacy", ("container", "legacy", "")),
        ("container:legacy:ro", ("container", "legacy", "ro")),
        ("container:", ("container", "", "")),
        ("db:ro:z", ("service", "db", "ro:z")),  # a mode the reader refuses, as written
        ("service", ("service", "service", "")),  # a service named "service"
        ("container", ("service", "container", "")),
    ],
)
def test_volumes_from(text: str, parts: tuple[str, str, str]) -> None:
    """One reading of a volumes_from entry, for the service's mounts and for the start
    order (a service lending its volumes starts first)."""
    assert parse.volumes_from(text) == parts
