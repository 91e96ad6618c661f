"""Docker Engine API fields built from the manifest model, shared by container mode
(``deployer/docker/containers.py``) and Swarm mode (``deployer/swarm/spec.py``).

Pure: plain data, no docker import. Durations in the API are nanoseconds (FACTS 13).
"""

from __future__ import annotations

from typing import Any

from deployer.manifest.model import Healthcheck, Mount

NS = 1_000_000_000


def ns(seconds: float) -> int:
    """``seconds`` in nanoseconds, rounded (1.001 s is 1001000000, not 1000999999)."""
    return round(seconds * NS)


def nano_cpus(cpus: float) -> int:
    """``deploy.resources.limits.cpus`` as the API's NanoCPUs (0.5 is 500000000)."""
    return round(cpus * NS)


def healthcheck(hc: Healthcheck | None) -> dict[str, Any] | None:
    """The API's Healthcheck; None keeps the image's own."""
    if hc is None:
        return None
    if hc.disable:
        return {"Test": ["NONE"]}
    out: dict[str, Any] = {}
    if hc.test is not None:
        test = list(hc.test)
        if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            test = ["CMD-SHELL", " ".join(test)]
        out["Test"] = test
    for key, value in (
        ("Interval", hc.interval),
        ("Timeout", hc.timeout),
        ("StartPeriod", hc.start_period),
        # API >= 1.44; older engines ignore it and the deployer probes itself (docker/health.py)
        ("StartInterval", hc.start_interval),
    ):
        if value is not None:
            out[key] = ns(value)
    if hc.retries is not None:
        out["Retries"] = hc.retries
    return out or None


def tmpfs_options(m: Mount) -> dict[str, int] | None:
    """A tmpfs mount's TmpfsOptions (size in bytes, mode bits); None for the defaults."""
    options = {"SizeBytes": m.tmpfs_size, "Mode": m.tmpfs_mode}
    return {k: v for k, v in options.items() if v} or None


def exposed_ports(expose: tuple[str, ...]) -> list[str]:
    """``expose:`` as the engine's ExposedPorts keys, as compose gives them: each entry as
    written ("8080", a range "8000-8010"), with its protocol (tcp when left out)."""
    out = []
    for entry in expose:
        port, _, proto = entry.partition("/")
        out.append(f"{port}/{proto or 'tcp'}")
    return out
