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
    ("mount", "message"),
    [
        ("./data:/data", "is a directory mounted writable at /data"),
        ("./missing:/srv/x", "does not exist in the checkout"),
    ],
)
def test_data_is_refused_with_the_ways_out(tmp_path: Path, mount: str, message: str) -> None:
    (tmp_path / "data").mkdir()
    m = write(tmp_path, SVC + f"    volumes: ['{mount}']\n")
    text = problems(m)
    assert "docker-compose.yml:4:" in text and message in text
    assert "named volume" in text and "files: {data: [" in text


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
