"""The safety policy judges canonical paths: every spelling of a protected bind source is
refused, in short and long syntax, read-only or not, on the volume's own line, naming the
`policy.allow` entry that would accept it; harmless binds pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployer.manifest import check_manifest
from deployer.manifest.policy import READ_ONLY_ALLOWED, canonical, needs

SOCK = "docker-socket"
SYS = "system-bind"

# (written host path, the allow entries that must be named)
BYPASSES: list[tuple[str, set[str]]] = [
    # the root of the host
    ("/", {SYS, SOCK}),
    ("//", {SYS, SOCK}),
    ("///", {SYS, SOCK}),
    ("/.", {SYS, SOCK}),
    ("/..", {SYS, SOCK}),
    ("/./", {SYS, SOCK}),
    ("/../../..", {SYS, SOCK}),
    ("/srv/..", {SYS, SOCK}),
    ("/tmp/../", {SYS, SOCK}),
    # the Docker socket and its directory
    ("/var/run/docker.sock", {SOCK, SYS}),
    ("//var/run/docker.sock", {SOCK, SYS}),
    ("/var//run/docker.sock", {SOCK, SYS}),
    ("/var/run//docker.sock", {SOCK, SYS}),
    ("/var/./run/docker.sock", {SOCK, SYS}),
    ("/var/run/./docker.sock", {SOCK, SYS}),
    ("/var/run/../run/docker.sock", {SOCK, SYS}),
    ("/srv/../var/run/docker.sock", {SOCK, SYS}),
    ("/var/run/docker.sock/", {SOCK, SYS}),
    ("/var/run/docker.sock/.", {SOCK, SYS}),
    ("/run/docker.sock", {SOCK, SYS}),
    ("//run//docker.sock", {SOCK, SYS}),
    ("/run/user/1000/docker.sock", {SOCK, SYS}),
    ("/home/ci/.docker/run/docker.sock", {SOCK, SYS}),
    ("/srv/app/docker.sock", {SOCK}),
    ("//var/run", {SOCK, SYS}),
    ("/var/run/", {SOCK, SYS}),
    ("/var/run/.", {SOCK, SYS}),
    ("/run", {SOCK, SYS}),
    ("//run/", {SOCK, SYS}),
    # containerd's socket and state
    ("/run/containerd/containerd.sock", {SOCK, SYS}),
    ("/run/containerd", {SOCK, SYS}),
    ("//run/containerd/", {SOCK, SYS}),
    ("/var/run/containerd/containerd.sock", {SOCK, SYS}),
    ("/var/lib/containerd", {SYS}),
    ("/opt/containerd.sock", {SOCK}),
    # parents of protected paths
    ("/var", {SOCK, SYS}),
    ("//var", {SOCK, SYS}),
    ("/var/", {SOCK, SYS}),
    ("/var/lib", {SYS}),
    ("/var/lib/", {SYS}),
    ("/var/log/../lib", {SYS}),
    ("/var/lib/docker", {SYS}),
    ("/var/lib/docker/volumes", {SYS}),
    ("/var/lib//docker", {SYS}),
    ("/var/lib/docker/../docker/containers", {SYS}),
    # system paths
    ("/etc", {SYS}),
    ("//etc/shadow", {SYS}),
    ("/etc/./shadow", {SYS}),
    ("/srv/../etc/passwd", {SYS}),
    ("/etc/localtime", {SYS}),  # allowed read-only only
    ("/proc", {SYS}),
    ("/proc/1/root", {SYS}),
    ("/proc/self/root/", {SYS}),
    ("/sys/fs/cgroup", {SYS}),
    ("/dev", {SYS}),
    ("/dev/sda", {SYS}),
    ("/dev/urandom", {SYS}),  # allowed read-only only
    ("/dev/random/..", {SYS}),
    ("/dev/urandom/../sda", {SYS}),
    ("/boot/", {SYS}),
    # home directories and their dot-entries; /home holds every home
    ("/root", {SYS}),
    ("/root/", {SYS}),
    ("/root/.ssh", {SYS}),
    ("/root/.bashrc", {SYS}),
    ("/root/n8n/../.ssh", {SYS}),
    ("/home", {SYS}),
    ("//home/", {SYS}),
    ("/home/app", {SYS}),
    ("/home/deploy/.ssh", {SYS}),
    ("/home/deploy/.ssh/authorized_keys", {SYS}),
    ("/home/deploy/.docker", {SYS}),
    ("/home/deploy/.bashrc", {SYS}),
    ("/home/deploy/data/../.config", {SYS}),
    ("/usr/bin", {SYS}),
    ("/bin", {SYS}),
    ("/sbin", {SYS}),
    ("/lib/modules", {SYS}),
    ("/lib64", {SYS}),
]

HARMLESS = [
    "/srv/data",
    "/srv//data/",
    "/var/lib/app",
    "/var/log/app",
    "/home/app/data",
    "/home/app/data/.cache",
    "/root/n8n",
    "/root/n8n/.n8n",
    "/homestead",
    "/opt/shop/conf",
    "/data/../srv/data",
    "/etcetera",
    "/variable",
    "/running",
    "/tmp/docker.socket-notes",
]

READ_ONLY_OK = [
    "/etc/localtime",
    "/etc/timezone",
    "//etc/localtime",
    "/etc/./timezone",
    "/dev/urandom",
    "/dev//random",
]


def test_the_table_is_big_enough() -> None:
    assert len(BYPASSES) >= 50
    assert len({b for b, _ in BYPASSES}) == len(BYPASSES)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("//", "/"),
        ("//var/run", "/var/run"),
        ("///var//run/./docker.sock/", "/var/run/docker.sock"),
        ("/a/b/../../..", "/"),
        ("/srv/data", "/srv/data"),
    ],
)
def test_canonical(written: str, expected: str) -> None:
    assert canonical(written) == expected


@pytest.mark.parametrize(("written", "entries"), BYPASSES, ids=[b for b, _ in BYPASSES])
def test_needs_names_every_entry(written: str, entries: set[str]) -> None:
    got = {name for name, _ in needs(written)}
    assert got == entries


def _manifest(tmp_path: Path, volume: str, allow: list[str] | None = None) -> Path:
    lines = [
        "app: shop",
        "environments:",
        "  production: {}",
    ]
    lines.append(f"policy: {{allow: {json.dumps(allow or [])}}}")
    lines += [
        "services:",
        "  web:",
        '    image: "registry.example.com/shop/web:1"',
        "    volumes:",
        '      - "/srv/ok:/ok"',
        volume,
    ]
    path = tmp_path / "deploy.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _forms(written: str) -> list[tuple[str, str, bool]]:
    """(form, the volume's YAML line, read-only) for the short, short :ro and long syntax."""
    q = json.dumps(written)
    return [
        ("short", f'      - "{written}:/host"', False),
        ("short-ro", f'      - "{written}:/host:ro"', True),
        ("long", f"      - {{type: bind, source: {q}, target: /host}}", False),
        ("long-ro", f"      - {{type: bind, source: {q}, target: /host, read_only: true}}", True),
    ]


@pytest.mark.parametrize(("written", "entries"), BYPASSES, ids=[b for b, _ in BYPASSES])
def test_every_spelling_is_refused_in_every_form(
    tmp_path: Path, written: str, entries: set[str]
) -> None:
    for form, line, read_only in _forms(written):
        if read_only and canonical(written) in READ_ONLY_ALLOWED:
            continue
        report = check_manifest(_manifest(tmp_path, line), None, {})
        assert not report.ok, (form, written)
        (problem,) = report.problems
        assert problem.line == 10, (form, problem.render())  # the volume's own line
        assert problem.path == "services.web.volumes[1]", (form, problem.render())
        assert f'"{written}"' in problem.message, problem.render()
        assert problem.fix is not None
        for entry in entries:
            assert f'"{entry}"' in problem.fix, (form, problem.render())
        # the entries it names are exactly what accepts it
        allowed = check_manifest(_manifest(tmp_path, line, sorted(entries)), None, {})
        assert allowed.ok, (form, [p.render() for p in allowed.problems])
        if len(entries) > 1:
            partial = check_manifest(_manifest(tmp_path, line, sorted(entries)[:1]), None, {})
            assert not partial.ok, form


@pytest.mark.parametrize("written", HARMLESS)
def test_harmless_binds_pass(tmp_path: Path, written: str) -> None:
    for form, line, _ in _forms(written):
        report = check_manifest(_manifest(tmp_path, line), None, {})
        assert report.ok, (form, [p.render() for p in report.problems])


@pytest.mark.parametrize("written", READ_ONLY_OK)
def test_harmless_host_files_read_only(tmp_path: Path, written: str) -> None:
    forms = _forms(written)
    for form, line, read_only in forms:
        report = check_manifest(_manifest(tmp_path, line), None, {})
        assert report.ok is read_only, (form, [p.render() for p in report.problems])


def _caps(tmp_path: Path, caps: list[str], allow: list[str] | None = None) -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments:\n  production: {}\n"
        f"policy: {{allow: {json.dumps(allow or [])}}}\n"
        "services:\n  web:\n    image: registry.example.com/shop/web:1\n"
        f"    cap_drop: [ALL]\n    cap_add: {json.dumps(caps)}\n"
    )
    return path


def test_cap_add_of_default_capabilities_needs_no_allow(tmp_path: Path) -> None:
    """searxng's `cap_drop: [ALL]` + `cap_add: [CHOWN, SETGID, SETUID]` grants nothing a
    container has by default, in any spelling."""
    caps = ["CHOWN", "SETGID", "SETUID", "cap_net_bind_service", "CAP_KILL", "dac_override"]
    report = check_manifest(_caps(tmp_path, caps), None, {})
    assert report.ok, [p.render() for p in report.problems]


def test_cap_add_beyond_the_defaults_names_the_capabilities(tmp_path: Path) -> None:
    report = check_manifest(_caps(tmp_path, ["CHOWN", "NET_ADMIN", "cap_sys_admin"]), None, {})
    (problem,) = report.problems
    assert problem.path == "services.web.cap_add"
    assert problem.line == 9
    assert "NET_ADMIN, cap_sys_admin" in problem.message
    assert "CHOWN" not in problem.message
    assert problem.fix is not None and '"cap_add"' in problem.fix
    assert not check_manifest(_caps(tmp_path, ["ALL"]), None, {}).ok
    allowed = check_manifest(_caps(tmp_path, ["NET_ADMIN", "ALL"], ["cap_add"]), None, {})
    assert allowed.ok, [p.render() for p in allowed.problems]


def test_a_refused_path_from_a_variable_keeps_its_separator(tmp_path: Path) -> None:
    """n8n writes `${DATA_FOLDER}/letsencrypt` with `DATA_FOLDER=/root/n8n/`: the message
    shows the variable back in the path with the `/` that follows it."""
    path = _manifest(tmp_path, '      - "${HOME_DIR}/.ssh:/keys"')
    report = check_manifest(path, None, {"HOME_DIR": "/home/deploy/"})
    (problem,) = report.problems
    assert "${HOME_DIR}/.ssh" in problem.message, problem.render()
    assert "${HOME_DIR}.ssh" not in problem.message
    assert "/home/deploy" not in problem.message


def _gpus(tmp_path: Path, devices: str, allow: list[str] | None = None) -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments:\n  production: {}\n"
        f"policy: {{allow: {json.dumps(allow or [])}}}\n"
        "services:\n  web:\n    image: registry.example.com/shop/web:1\n"
        f"    deploy: {{resources: {{reservations: {{devices: {devices}}}}}}}\n"
    )
    return path


def test_a_gpu_reservation_is_read_as_compose_gives_it_and_needs_devices(
    tmp_path: Path,
) -> None:
    """deploy.resources.reservations.devices: direct access to host hardware, as `devices:`."""
    from deployer.manifest import load_manifest
    from deployer.manifest.model import DeviceRequest

    devices = (
        "[{driver: nvidia, count: all, capabilities: [gpu]}, {capabilities: [gpu]},"
        " {device_ids: ['0', '3'], capabilities: [gpu, utility], options: {a: b}},"
        " {driver: nvidia, count: 2, capabilities: [gpu]}]"
    )
    (problem,) = check_manifest(_gpus(tmp_path, devices), None, {}).problems
    assert problem.path == "services.web.deploy.resources.reservations.devices"
    assert problem.fix is not None and '"devices"' in problem.fix
    (web,) = load_manifest(_gpus(tmp_path, devices, ["devices"]), None, {}).services
    assert web.device_requests == (
        DeviceRequest(("gpu",), "nvidia", -1),
        DeviceRequest(("gpu",), "", -1),  # neither count nor device_ids: all, as compose
        DeviceRequest(("gpu", "utility"), "", 0, ("0", "3"), (("a", "b"),)),
        DeviceRequest(("gpu",), "nvidia", 2),
    )
    bad = check_manifest(_gpus(tmp_path, "[{count: 1}]", ["devices"]), None, {})
    (problem,) = bad.problems
    assert problem.path == "services.web.deploy.resources.reservations.devices[0].capabilities"


# A named volume of the local driver mounts what its driver_opts say: (driver_opts, the
# allow entries it needs). Each passed validation before (a bind of the host's /var/run
# through `o: bind`, found by reading what the engine's local driver mounts).
VOLUME_BYPASSES: list[tuple[str, set[str]]] = [
    ("{type: none, o: bind, device: /var/run}", {SOCK, SYS}),
    ("{type: none, o: bind, device: /var/run/docker.sock}", {SOCK, SYS}),
    ('{type: none, o: "ro,rbind", device: //var/./run/}', {SOCK, SYS}),
    ("{o: bind, device: /}", {SOCK, SYS}),
    ("{type: nfs, o: bind, device: /etc}", {SYS}),  # bind wins over the type
    ("{o: bind, device: var/lib/docker}", {SYS}),  # relative: from the engine's /
    ("{type: none, o: bind, device: /home/deploy/.ssh}", {SYS}),
    ("{type: ext4, device: /dev/sda1}", {SYS}),  # a device of the host
    ("{type: btrfs, device: /dev/../dev/nvme0n1p2}", {SYS}),
    (
        '{type: overlay, o: "lowerdir=/etc:/srv/a,upperdir=/srv/u,workdir=/srv/w"}',
        {SYS},
    ),
    ('{type: overlay, device: overlay, o: "lowerdir=/srv/a,upperdir=/root,workdir=/srv/w"}', {SYS}),
]
VOLUME_HARMLESS = [
    "{type: none, o: bind, device: /srv/shop/data}",
    '{type: none, o: "ro,bind", device: /var/lib/shop}',
    '{type: nfs, o: "addr=10.0.0.1,rw", device: ":/export/shop"}',
    '{type: cifs, o: "addr=files,username=shop", device: "//files/shop"}',
    '{type: tmpfs, device: tmpfs, o: "size=100m"}',
    '{type: overlay, device: overlay, o: "lowerdir=/srv/a,upperdir=/srv/u,workdir=/srv/w"}',
]


def _volume_manifest(
    tmp_path: Path, opts: str, allow: list[str] | None = None, driver: str = ""
) -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments:\n  production: {}\n"
        f"policy: {{allow: {json.dumps(allow or [])}}}\n"
        "services:\n  web:\n    image: registry.example.com/shop/web:1\n"
        "    volumes: [data:/data]\n"
        f"volumes:\n  data:\n{driver}    driver_opts: {opts}\n"
    )
    return path


@pytest.mark.parametrize(("opts", "entries"), VOLUME_BYPASSES, ids=[o for o, _ in VOLUME_BYPASSES])
def test_a_volume_mounting_a_protected_host_path_is_refused(
    tmp_path: Path, opts: str, entries: set[str]
) -> None:
    report = check_manifest(_volume_manifest(tmp_path, opts), None, {})
    (problem,) = report.problems
    assert problem.path == "volumes.data.driver_opts", problem.render()
    assert problem.line == 11, problem.render()
    assert "refused by the safety policy" in problem.message
    assert problem.fix is not None
    for entry in entries:
        assert f'"{entry}"' in problem.fix, problem.render()
    allowed = check_manifest(_volume_manifest(tmp_path, opts, sorted(entries)), None, {})
    assert allowed.ok, [p.render() for p in allowed.problems]
    local = check_manifest(_volume_manifest(tmp_path, opts, driver="    driver: local\n"), None, {})
    assert not local.ok


@pytest.mark.parametrize("opts", VOLUME_HARMLESS)
def test_a_volume_mounting_data_or_a_share_passes(tmp_path: Path, opts: str) -> None:
    report = check_manifest(_volume_manifest(tmp_path, opts), None, {})
    assert report.ok, [p.render() for p in report.problems]


def test_a_volume_path_from_a_variable_is_judged_and_never_shown(tmp_path: Path) -> None:
    path = _volume_manifest(tmp_path, '{type: none, o: bind, device: "${DATA_DIR}"}')
    (problem,) = check_manifest(path, None, {"DATA_DIR": "/var/run"}).problems
    assert "a path given by a variable" in problem.message, problem.render()
    assert check_manifest(path, None, {"DATA_DIR": "/srv/shop"}).ok


def test_a_compose_volume_is_judged_too(tmp_path: Path) -> None:
    (tmp_path / "deploy.yml").write_text(
        "app: shop\ncompose: [docker-compose.yml]\nenvironments:\n  production: {}\n"
    )
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  web:\n    image: registry.example.com/shop/web:1\n"
        "    volumes: [run:/run/host]\n"
        "volumes:\n  run:\n    driver: local\n"
        "    driver_opts:\n      type: none\n      o: bind\n      device: /var/run\n"
    )
    (problem,) = check_manifest(tmp_path / "deploy.yml", None, {}).problems
    assert problem.path == "volumes.run.driver_opts", problem.render()
    assert problem.file.endswith("docker-compose.yml"), problem.render()


# security_opt as the engine reads it (moby's parseSecurityOpt): (written, the allow entry
# it needs). The first three passed validation before: the exact spellings of
# `unconfined` were the only ones refused.
SECURITY_OPTS: list[tuple[str, str]] = [
    ('seccomp={"defaultAction":"SCMP_ACT_ALLOW"}', "seccomp=unconfined"),
    ("disable", "label=disable"),  # the engine reads it as label=disable
    ("label=type:spc_t", "label=disable"),
    ("label:user:system_u", "label=disable"),
    ("apparmor=docker-unconfined", "apparmor=unconfined"),
    ("seccomp:/srv/profile.json", "seccomp=unconfined"),
    ("seccomp=unconfined", "seccomp=unconfined"),
    ("seccomp:unconfined", "seccomp=unconfined"),
    ("apparmor:unconfined", "apparmor=unconfined"),
    ("label=disable", "label=disable"),
    ("label:disable", "label=disable"),
]
SECURITY_OPTS_KEPT = [
    "no-new-privileges",
    "no-new-privileges:true",
    "no-new-privileges=false",
    "label=level:s0:c100,c200",
    "label:filetype:container_file_t",
    "apparmor=docker-default",
    "seccomp=builtin",
]


def _security(tmp_path: Path, opt: str, allow: list[str] | None = None) -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments:\n  production: {}\n"
        f"policy: {{allow: {json.dumps(allow or [])}}}\n"
        "services:\n  web:\n    image: registry.example.com/shop/web:1\n"
        f"    security_opt: [{json.dumps(opt)}]\n"
    )
    return path


@pytest.mark.parametrize(("opt", "entry"), SECURITY_OPTS, ids=[o for o, _ in SECURITY_OPTS])
def test_a_security_opt_weakening_isolation_is_refused_in_every_spelling(
    tmp_path: Path, opt: str, entry: str
) -> None:
    (problem,) = check_manifest(_security(tmp_path, opt), None, {}).problems
    assert problem.path == "services.web.security_opt[0]", problem.render()
    assert "refused by the safety policy" in problem.message, problem.render()
    assert problem.fix is not None and f'"{entry}"' in problem.fix, problem.render()
    allowed = check_manifest(_security(tmp_path, opt, [entry]), None, {})
    assert allowed.ok, [p.render() for p in allowed.problems]


@pytest.mark.parametrize("opt", SECURITY_OPTS_KEPT)
def test_a_security_opt_keeping_isolation_passes(tmp_path: Path, opt: str) -> None:
    report = check_manifest(_security(tmp_path, opt), None, {})
    assert report.ok, [p.render() for p in report.problems]


@pytest.mark.parametrize("opt", ["seccomp = unconfined", "Seccomp=unconfined", "bogus"])
def test_a_security_opt_the_engine_does_not_read_is_refused(tmp_path: Path, opt: str) -> None:
    (problem,) = check_manifest(_security(tmp_path, opt), None, {}).problems
    assert "not a security option" in problem.message, problem.render()


def _keyed(tmp_path: Path, key: str, value: str, allow: list[str] | None = None) -> Path:
    path = tmp_path / "deploy.yml"
    path.write_text(
        "app: shop\nenvironments:\n  production: {}\n"
        f"policy: {{allow: {json.dumps(allow or [])}}}\n"
        "services:\n  web:\n    image: registry.example.com/shop/web:1\n"
        f"    {key}: {json.dumps(value)}\n"
    )
    return path


HOST_CHOSEN = [
    ("runtime", "nvidia", "runtime"),  # every GPU with NVIDIA_VISIBLE_DEVICES=all
    ("runtime", "sysbox-runc", "runtime"),
    ("runtime", "io.containerd.wasmedge.v1", "runtime"),
    ("cgroup_parent", "/", "cgroup_parent"),
    ("cgroup_parent", "system.slice", "cgroup_parent"),
    ("cgroup_parent", "/docker/0123456789ab", "cgroup_parent"),  # another container's
]


@pytest.mark.parametrize(("key", "value", "entry"), HOST_CHOSEN)
def test_a_runtime_or_cgroup_parent_of_the_hosts_needs_its_allow_entry(
    tmp_path: Path, key: str, value: str, entry: str
) -> None:
    """A runtime is whatever the host registered under that name (the `nvidia` runtime
    gives every GPU without `devices`); a cgroup parent takes the container out of the
    engine's cgroup and its limits, or into another workload's. Both passed before."""
    (problem,) = check_manifest(_keyed(tmp_path, key, value), None, {}).problems
    assert problem.path == f"services.web.{key}", problem.render()
    assert problem.line == 8, problem.render()
    assert "refused by the safety policy" in problem.message, problem.render()
    assert problem.fix is not None and f'"{entry}"' in problem.fix, problem.render()
    allowed = check_manifest(_keyed(tmp_path, key, value, [entry]), None, {})
    assert allowed.ok, [p.render() for p in allowed.problems]


@pytest.mark.parametrize("runtime", ["runc", "io.containerd.runc.v2"])
def test_the_engines_own_runtime_needs_no_allow(tmp_path: Path, runtime: str) -> None:
    report = check_manifest(_keyed(tmp_path, "runtime", runtime), None, {})
    assert report.ok, [p.render() for p in report.problems]


@pytest.mark.parametrize(
    ("keys", "refused"),
    [
        ("oom_score_adj: -1000", ["oom_score_adj"]),
        ('oom_score_adj: "-1"', ["oom_score_adj"]),
        ("oom_kill_disable: true", ["oom_kill_disable"]),
        ("oom_score_adj: 500\n    oom_kill_disable: false", []),
    ],
)
def test_a_container_the_kernel_spares_when_memory_runs_out_needs_oom(
    tmp_path: Path, keys: str, refused: list[str]
) -> None:
    """A negative oom_score_adj or oom_kill_disable: the kernel kills other processes of
    the host instead (another app's containers, sshd, dockerd): `policy.allow: [oom]`.
    Both deployed without a word before."""
    for allow in ([], ["oom"]):
        manifest = tmp_path / "deploy.yml"
        manifest.write_text(
            "app: shop\nenvironments:\n  production: {hosts: ['ssh://d@h.example.com']}\n"
            f"policy: {{allow: {json.dumps(allow)}}}\n"
            f"services:\n  web:\n    image: busybox:1\n    {keys}\n"
        )
        problems = check_manifest(manifest, "production", {}).problems
        found = sorted(p.path.rsplit(".", 1)[-1] for p in problems)
        assert found == ([] if allow else refused), [p.render() for p in problems]
        for p in problems:
            assert '"oom"' in p.render()
