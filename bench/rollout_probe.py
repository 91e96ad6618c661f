"""A bounded load probe, and local test images, for the rollout benches and tests.

The probe is a container running a shell loop: one HTTP GET every 10 ms, for at most
``max_requests`` requests or until told to stop, recording failed requests (refused,
reset, an HTTP error, or no answer within 3 s, a patient but finite client) and the
longest gap between two successful ones (centiseconds from /proc/uptime). It runs on
the app's network (to hit a service alias) or on the host network (a published port),
and only ever talks to the address it is given (a container or 127.0.0.1).

Images: ``ensure_images`` imports busybox (Debian's busybox-static) as a base and builds
``<prefix>/web:v1`` and ``v2`` from it (httpd serving /version, exits on SIGTERM).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker
import docker.errors

from deployer.manifest.model import Healthcheck

BASE = "deployer-bench/base:1"
# The web image's own HEALTHCHECK, and the same check as a manifest healthcheck.
_HC_CMD = ("wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version")
_HC_INTERVAL, _HC_TIMEOUT, _HC_RETRIES = 0.5, 2.0, 3
WEB_HEALTHCHECK = Healthcheck(
    test=("CMD", *_HC_CMD), interval=_HC_INTERVAL, timeout=_HC_TIMEOUT, retries=_HC_RETRIES
)
WEB_VERSION = 3  # bump when the web image changes
WEB_CMD = ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]

PROBE = r"""
n=0; fail=0; gap=0; read up rest < /proc/uptime; last=${up%.*}${up#*.}
while [ $n -lt {max} ] && [ ! -f /tmp/stop ]; do
  if timeout 3 wget -q -O /dev/null {url} 2>/dev/null; then
    read up rest < /proc/uptime; now=${up%.*}${up#*.}
    d=$((now - last)); [ $d -gt $gap ] && gap=$d; last=$now
  else
    fail=$((fail + 1))
  fi
  n=$((n + 1)); sleep 0.01
done
echo "requests=$n failed=$fail longest_gap_cs=$gap"
"""


@dataclass(frozen=True)
class ProbeResult:
    requests: int
    failed: int
    longest_gap_ms: int


def _busybox() -> str:
    path = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(path):
        raise RuntimeError("busybox is missing: apt-get install busybox-static")
    return path


def ensure_base(client: docker.DockerClient, ref: str = BASE) -> str:
    """A base image with every busybox applet (imported, never pulled)."""
    try:
        client.api.inspect_image(ref)
        return ref
    except docker.errors.ImageNotFound:
        pass
    bb = _busybox()
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "www"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(bb, "bin/busybox")
        for name in applets.stdout.split():
            if name == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{name}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    repo, tag = ref.rsplit(":", 1)
    client.api.import_image_from_data(
        buf.getvalue(), repository=repo, tag=tag, changes=['CMD ["sh"]', "ENV PATH=/bin"]
    )
    return ref


def ensure_web(client: docker.DockerClient, version: str, prefix: str = "deployer-bench") -> str:
    """``<prefix>/web:<version>``: httpd on 8080 serving /version, exits on SIGTERM, with a
    HEALTHCHECK every 0.5 s (so compose's containers run the same probes as ours)."""
    ref = f"{prefix}/web:{version}"
    try:
        labels = client.api.inspect_image(ref)["Config"].get("Labels") or {}
        if labels.get("deployer-bench.version") == str(WEB_VERSION):
            return ref
    except docker.errors.ImageNotFound:
        pass
    base = ensure_base(client)
    dockerfile = (
        f"FROM {base}\n"
        f"RUN echo {version} > /www/version\n"
        "EXPOSE 8080\n"
        f"LABEL deployer-bench.version={WEB_VERSION}\n"
        f"HEALTHCHECK --interval={_HC_INTERVAL * 1000:g}ms --timeout={_HC_TIMEOUT:g}s"
        f" --retries={_HC_RETRIES} CMD {' '.join(_HC_CMD)}\n"
        f"CMD {json.dumps(WEB_CMD)}\n"
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    for _ in client.api.build(fileobj=buf, custom_context=True, tag=ref, rm=True, decode=True):
        pass
    client.api.inspect_image(ref)
    return ref


def start_probe(
    client: docker.DockerClient,
    url: str,
    *,
    network: str | None = None,
    labels: dict[str, str] | None = None,
    max_requests: int = 6000,
    image: str = BASE,
) -> str:
    """Start the probe against ``url``; on ``network`` (a service alias) or the host's."""
    base = ensure_base(client, image)
    script = PROBE.replace("{max}", str(max_requests)).replace("{url}", url)
    created = client.api.create_container(
        base,
        ["sh", "-c", script],
        labels=labels or {},
        host_config=client.api.create_host_config(network_mode=network or "host"),
    )
    cid: str = created["Id"]
    client.api.start(cid)
    return cid


def stop_probe(client: docker.DockerClient, cid: str, timeout: float = 30) -> ProbeResult:
    """Tell the probe to stop, wait (bounded) for its figures, remove it."""
    try:
        ex = client.api.exec_create(cid, ["sh", "-c", "echo > /tmp/stop"])
        client.api.exec_start(ex)
        client.api.wait(cid, timeout=timeout)
        out = bytes(client.api.logs(cid)).decode()
    finally:
        client.api.remove_container(cid, force=True)
    m = re.search(r"requests=(\d+) failed=(\d+) longest_gap_cs=(\d+)", out)
    if not m:
        raise RuntimeError(f"the probe printed no figures: {out[-500:]!r}")
    return ProbeResult(int(m.group(1)), int(m.group(2)), int(m.group(3)) * 10)


def wait_serving(
    client: docker.DockerClient,
    url: str,
    network: str | None,
    timeout: float = 20,
    image: str = BASE,
) -> None:
    """Until one GET of ``url`` succeeds from a container on ``network`` (bounded)."""
    base = ensure_base(client, image)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.containers.run(
                base,
                ["timeout", "2", "wget", "-q", "-O", "/dev/null", url],
                network_mode=network or "host",
                remove=True,
            )
            return
        except docker.errors.ContainerError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


def probe_update(
    client: docker.DockerClient,
    url: str,
    network: str | None,
    labels: dict[str, str],
    update: Callable[[], object],
) -> tuple[ProbeResult, float]:
    """Once ``url`` serves, run ``update`` under the probe (1 s of load before and after).

    Returns the probe's figures and the wall time ``update`` took; the probe container is
    removed even when ``update`` fails.
    """
    wait_serving(client, url, network)
    probe = start_probe(client, url, network=network, labels=labels)
    stopping = False
    try:
        time.sleep(1.0)
        started = time.monotonic()
        update()
        took = time.monotonic() - started
        time.sleep(1.0)
        stopping = True  # stop_probe removes the probe whatever happens
        return stop_probe(client, probe), took
    finally:
        if not stopping:
            client.api.remove_container(probe, force=True)


def deploy(host: object, manifest: object, quiet: bool = True) -> object:
    """Plan and apply ``manifest`` on one DockerHost with the deployer's own rollout."""
    from deployer.context import Context
    from deployer.docker.host import DockerHost
    from deployer.manifest.model import Manifest
    from deployer.plan import make_plan
    from deployer.rollout import PrintLog, Rollout

    assert isinstance(host, DockerHost) and isinstance(manifest, Manifest)
    m = manifest
    observed = {host.name: host.observe(m.app, m.environment.name)}
    digests = {s.name: host.resolve(s.image, None, pull_policy=s.pull_policy) for s in m.services}
    plan = make_plan(m, list(observed.values()), digests)
    log = PrintLog((lambda s: None) if quiet else print)
    r = Rollout(m, plan, {host.name: host}, observed, Context(user="bench"), log)
    r.run()
    if r.error is not None:
        raise RuntimeError(r.error.render())
    return r


def probe_deploys(
    client: docker.DockerClient,
    first: object,
    second: object,
    url: str,
    network: str | None,
) -> tuple[ProbeResult, float]:
    """The manifest ``first`` deployed on the local engine by the deployer's own rollout,
    then the update to ``second`` under the probe at ``url`` (``probe_update``); the app
    removed afterwards."""
    from deployer.docker.host import connect_host
    from deployer.manifest.model import Manifest

    assert isinstance(first, Manifest) and isinstance(second, Manifest)
    host = connect_host("unix:///var/run/docker.sock", {})
    try:
        deploy(host, first)
        labels = {"io.deployer.app": first.app}
        return probe_update(client, url, network, labels, lambda: deploy(host, second))
    finally:
        remove_app(client, first.app)
        host.close()


def remove_app(client: docker.DockerClient, app: str) -> None:
    """Everything labelled with the app (containers, then volumes and networks)."""
    flt = {"label": [f"io.deployer.app={app}"]}
    for c in client.api.containers(all=True, filters=flt):
        client.api.remove_container(c["Id"], force=True)
    for v in client.api.volumes(filters=flt).get("Volumes") or []:
        client.api.remove_volume(v["Name"], force=True)
    for n in client.api.networks(filters=flt):
        for _ in range(20):  # endpoints of removed containers go away asynchronously
            try:
                client.api.remove_network(n["Id"])
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:
                time.sleep(0.25)
