"""Relative bind mounts, configs, secrets and build: how the manifest reads them."""

from __future__ import annotations

import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from deployer.manifest import check_manifest, load_manifest
from deployer.manifest import pack as F
from deployer.manifest.model import Service, differing_parts

ENV = {"API_KEY": "k-0123456789"}


def write(tmp: Path, compose: str, manifest_extra: str = "") -> Path:
    (tmp / "docker-compose.yml").write_text(compose)
    m = tmp / "deploy.yml"
    m.write_text(
        "app: shop\ncompose: docker-compose.yml\n" + manifest_extra + "environments: {prod: {}}\n"
    )
    return m


def problems(m: Path, env: dict[str, str] | None = None) -> str:
    report = check_manifest(m, None, env or ENV)
    return "\n".join(p.render() for p in report.problems)


SVC = "services:\n  web:\n    image: registry.example.com/web:1\n"


def test_relative_file_dir_config_and_secret_become_file_mounts(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text("x")
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "i.html").write_text("i")
    m = write(
        tmp_path,
        SVC + "    volumes: ['./nginx.conf:/etc/nginx/nginx.conf', './html:/srv/html:ro']\n"
        "    configs: [{source: c, target: /etc/c.yml, mode: 0440}]\n"
        "    secrets: [{source: s, uid: '1000', mode: '0400'}]\n"
        "configs: {c: {content: 'a: 1'}}\nsecrets: {s: {environment: API_KEY}}\n",
    )
    web = load_manifest(m, None, ENV).service("web")
    assert web.volumes == ()
    got = {(f.kind, f.name, f.target, f.directory, f.mode, f.uid) for f in web.files}
    assert got == {
        ("file", "./nginx.conf", "/etc/nginx/nginx.conf", False, None, 0),
        ("file", "./html", "/srv/html", True, None, 0),
        ("config", "c", "/etc/c.yml", False, 0o440, 0),
        ("secret", "s", "/run/secrets/s", False, 0o400, 1000),
    }
    secret = next(f for f in web.files if f.kind == "secret")
    assert "k-0123456789" not in repr(secret) and "k-0123456789" not in str(web.config_parts())
    with tarfile.open(fileobj=BytesIO(F.pack_bytes(b"k", 0o400, 1000, 1000))) as tar:
        members = [(i.name, i.mode, i.uid) for i in tar.getmembers()]
    assert members == [
        ("c", 0o400, 1000),
        ("done", 0o400, 0),
    ]


def test_a_changed_file_changes_the_part_named_after_it(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("1")
    (tmp_path / "b.conf").write_text("1")
    m = write(
        tmp_path, SVC + "    volumes: ['./a.conf:/etc/a.conf:ro', './b.conf:/etc/b.conf:ro']\n"
    )
    before = load_manifest(m, None, ENV).service("web").config_parts()
    (tmp_path / "a.conf").write_text("2")
    after = load_manifest(m, None, ENV).service("web").config_parts()
    assert differing_parts(after, before) == ["file ./a.conf"]


def test_a_service_without_files_keeps_its_hash() -> None:
    svc = Service(name="web", image="x")
    assert "files" not in svc.config_parts() and "build" not in svc.config_parts()


@pytest.mark.parametrize(
    ("layout", "mount", "volume"),
    [
        ((), "./data:/var/lib/db", "data"),  # not in the checkout
        (("data/",), "./data:/var/lib/db", "data"),  # an empty directory
        (("data/.gitkeep",), "./data:/var/lib/db", "data"),  # kept by git with a placeholder
        (("data/db/.gitignore",), "./data/db:/var/lib/db", "data_db"),
        ((), "~/minecraft_data:/data", "minecraft_data"),  # the home of whoever runs compose
    ],
)
def test_a_directory_with_nothing_to_ship_is_data(
    tmp_path: Path, layout: tuple[str, ...], mount: str, volume: str
) -> None:
    for entry in layout:
        (tmp_path / entry).parent.mkdir(parents=True, exist_ok=True)
        if not entry.endswith("/"):
            (tmp_path / entry).write_text("")
    m = write(tmp_path, SVC + f"    volumes: ['{mount}']\n")
    man = load_manifest(m, None, ENV)
    (got,) = man.service("web").volumes
    assert (got.type, got.source, got.read_only) == ("volume", volume, False)
    assert man.service("web").files == ()
    (top,) = man.volumes
    assert (top.name, top.data_dir) == (volume, mount.partition(":")[0].rstrip("/"))
    assert not check_manifest(m, None, ENV).warnings


def test_a_directory_with_files_mounted_writable_is_shipped_read_only_with_a_warning(
    tmp_path: Path,
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "index.php").write_text("<?php")
    m = write(tmp_path, SVC + "    volumes: ['./app:/var/www/html']\n")
    (f,) = load_manifest(m, None, ENV).service("web").files
    assert f.directory and f.target == "/var/www/html"
    (warning,) = check_manifest(m, None, ENV).warnings
    text = warning.render()
    assert "docker-compose.yml:4:" in text and "mounted read-only on the hosts" in text
    assert "files: {data: [./app]}" in text


def test_a_missing_path_mounted_read_only_is_data_with_a_warning(tmp_path: Path) -> None:
    m = write(tmp_path, SVC + "    volumes: ['./certs/cert.pem:/cert.pem:ro']\n")
    (got,) = load_manifest(m, None, ENV).service("web").volumes
    assert (got.type, got.source, got.read_only) == ("volume", "certs_cert.pem", True)
    (warning,) = check_manifest(m, None, ENV).warnings
    assert "is not in the checkout" in warning.render()


def test_data_directories_never_share_a_volume_by_accident(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    m = write(
        tmp_path / "app",
        SVC + "    volumes: ['./data:/a', '../data:/b', 'data:/c']\nvolumes: {data: {}}\n",
    )
    volumes = load_manifest(m, None, ENV).service("web").volumes
    names = [v.source for v in volumes]
    assert len(set(names)) == 3 and names[2] == "data"


def test_x_deployer_files_in_the_compose_file_says_what_is_data(tmp_path: Path) -> None:
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "seed.txt").write_text("x")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a").write_text("x")
    m = write(
        tmp_path,
        SVC + "    volumes: ['./uploads:/srv/uploads', './rules:/srv/rules']\n"
        "x-deployer-files: {data: [./uploads], config: [./rules]}\n",
    )
    web = load_manifest(m, None, ENV).service("web")
    assert [(v.type, v.source) for v in web.volumes] == [("volume", "uploads")]
    assert [f.name for f in web.files] == ["./rules"]
    assert not check_manifest(m, None, ENV).warnings


def test_x_deployer_files_problems_point_into_the_compose_file(tmp_path: Path) -> None:
    m = write(tmp_path, SVC + "x-deployer-files: {data: [/abs]}\n")
    assert "docker-compose.yml:4:" in problems(m) and "is not a relative path" in problems(m)


def test_files_data_is_a_named_volume_created_empty(tmp_path: Path) -> None:
    m = write(
        tmp_path, SVC + "    volumes: ['./uploads:/srv/uploads']\n", "files: {data: [./uploads]}\n"
    )
    man = load_manifest(m, None, ENV)
    (mount,) = man.service("web").volumes
    assert (mount.type, mount.source, mount.target) == ("volume", "uploads", "/srv/uploads")
    assert [v.name for v in man.volumes] == ["uploads"]


def test_files_config_makes_a_writable_directory_configuration(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    m = write(
        tmp_path, SVC + "    volumes: ['./rules:/srv/rules']\n", "files: {config: [./rules]}\n"
    )
    (f,) = load_manifest(m, None, ENV).service("web").files
    assert f.directory and f.target == "/srv/rules"


def test_secret_from_an_unset_variable_names_the_variable(tmp_path: Path) -> None:
    m = write(tmp_path, SVC + "    secrets: [s]\nsecrets: {s: {environment: DB_PW}}\n")
    text = problems(m)
    assert "DB_PW, which is not set" in text and "docker-compose.yml:5:" in text


def test_build_without_image_needs_the_ci_variables(tmp_path: Path) -> None:
    m = write(tmp_path, "services:\n  web:\n    build: ./web\n")
    text = problems(m, {"CI_COMMIT_SHA": "abc"})
    assert "CI_REGISTRY_IMAGE is not set" in text and "docker-compose.yml:3:" in text
    env = {"CI_REGISTRY_IMAGE": "registry.example.com/shop", "CI_COMMIT_SHA": "abc"}
    web = load_manifest(m, None, env).service("web")
    assert web.image == "registry.example.com/shop/web:abc"
    assert web.build is not None and web.build.context == str(tmp_path / "web")


BUILDKIT = """\
services:
  web:
    image: registry.example.com/web:1
    build:
      context: ./web
      dockerfile_inline: |
        FROM busybox
      additional_contexts: {assets: ./assets}
      ssh: [default]
      secrets: [npmrc]
      tags: [registry.example.com/web:latest]
      platforms: [linux/amd64, linux/arm64]
      network: host
      shm_size: 1g
      extra_hosts: ["mirror.internal=10.0.0.5"]
      no_cache: true
      pull: true
      cache_to: [type=inline]
      ulimits: {nofile: 65535}
secrets:
  npmrc: {file: ./npmrc}
"""


def test_buildkit_keys_of_build_do_not_stop_a_deploy(tmp_path: Path) -> None:
    """A deploy does not build: compose's BuildKit keys under `build:` are accepted (they
    were refused as unknown keys), and recorded as those `deployer build` cannot honour."""
    (tmp_path / "npmrc").write_text("x")
    m = write(tmp_path, BUILDKIT)
    assert problems(m) == ""
    build = load_manifest(m, None, ENV).service("web").build
    assert build is not None
    assert build.not_built_here == (
        "dockerfile_inline",
        "additional_contexts",
        "ssh",
        "secrets",
        "tags",
        "platforms",
        "network",
        "shm_size",
        "extra_hosts",
        "no_cache",
        "pull",
        "cache_to",
        "ulimits",
    )


def test_build_keys_keep_their_types(tmp_path: Path) -> None:
    m = write(tmp_path, SVC + "    build: {context: ., network: [host], tags: latest}\n")
    text = problems(m)
    assert "docker-compose.yml:4:" in text and "build.network" in text and "build.tags" in text
