"""The cgroup keys of compose: CPU sets, periods and quotas, real-time CPU time, swappiness,
the OOM killer, the cgroup parent, storage options and block I/O, read as docker compose
gives them to the engine (``HostConfig``).

Compose sends a 0 of these numbers as nothing (the engine's default), so a 0 is left out of
``out`` like an unset key: neither changes the config hash.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from deployer.manifest import parse
from deployer.manifest.model import BlkioConfig
from deployer.manifest.problems import Path
from deployer.manifest.readers.values import mapping

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder

CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_WHOLE = re.compile(r"^[-+]?\d+$")
_MICROSECONDS = "write a whole number of microseconds, e.g. 100000 (0.1 s)"


def whole(b: Builder, p: Path, value: Any, fix: str) -> int | None:
    """An integer, or its text: compose takes ``cpu_quota: "50000"`` as 50000."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE.match(value.strip()):
        return int(value.strip())
    b.err(p, f'"{value}" is not a whole number', fix)
    return None


def read_cpu(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """cpuset, cpu_period, cpu_quota, cpu_rt_period and cpu_rt_runtime."""
    cpuset = raw.get("cpuset")
    if isinstance(cpuset, str) and cpuset.strip():
        if not CPUSET.match(cpuset.strip()):
            b.err(
                (*path, "cpuset"),
                f'"{cpuset}" is not a list of CPUs',
                "write CPU numbers and ranges, e.g. 0-3 or 0,2",
            )
        else:
            out["cpuset"] = cpuset.strip()
    got: dict[str, int] = {}
    for key in ("cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime"):
        if raw.get(key) is None:
            continue
        fix = _MICROSECONDS
        if key.startswith("cpu_rt"):
            fix = "write microseconds, e.g. 950000: docker compose takes no duration here"
        value = whole(b, (*path, key), raw[key], fix)
        if value is None or value == 0:
            continue
        problem = _cpu_range(key, value)
        if problem:
            b.err((*path, key), f"{value} is out of range", problem)
            continue
        got[key] = value
    rt_period, rt_runtime = got.get("cpu_rt_period"), got.get("cpu_rt_runtime")
    if rt_period and rt_runtime and rt_runtime > rt_period:
        b.err(
            (*path, "cpu_rt_runtime"),
            f"cpu_rt_runtime ({rt_runtime}) is longer than cpu_rt_period ({rt_period})",
            "make it at most cpu_rt_period: the runtime is the part of each period the "
            "container may use",
        )
    limits = mapping(mapping(mapping(raw, "deploy"), "resources"), "limits")
    cpus = raw.get("cpus") is not None or limits.get("cpus") is not None
    for key in ("cpu_period", "cpu_quota"):
        if key in got and cpus:
            b.err(
                (*path, key),
                f"{key} and cpus cannot both be set: the engine refuses a CPU period or "
                "quota beside a CPU count",
                "keep cpus (the engine sets the period and quota from it), or remove cpus",
            )
    out.update(got)


def _cpu_range(key: str, value: int) -> str | None:
    """The fix for a value of ``key`` the engine refuses; None when it takes it."""
    if key == "cpu_period" and not 1000 <= value <= 1_000_000:
        return "use 1000 to 1000000 microseconds (1 ms to 1 s)"
    if key == "cpu_quota" and value != -1 and value < 1000:
        return "use at least 1000 microseconds (1 ms), or -1 for no quota"
    if key == "cpu_rt_period" and value < 1:
        return "use a positive number of microseconds"
    if key == "cpu_rt_runtime" and value < -1:
        return "use a number of microseconds, or -1 for no limit"
    return None


def read_memory(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """mem_swappiness (0 is not sent, as compose) and oom_kill_disable."""
    p = (*path, "mem_swappiness")
    if raw.get("mem_swappiness") is not None:
        value = whole(b, p, raw["mem_swappiness"], "use 0 to 100")
        if value is not None and not 0 <= value <= 100:
            b.err(p, f"{value} is out of range", "use 0 to 100")
        elif value == 0:
            b.warn(
                p,
                "mem_swappiness: 0 is not sent to the engine (docker compose does not send a "
                "0 either): the container keeps the host's swappiness",
                "use 1 for the least swapping, or remove the key",
            )
        elif value is not None:
            out["mem_swappiness"] = value
    if raw.get("oom_kill_disable") is True:
        out["oom_kill_disable"] = True


def read_cgroup_parent(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """cgroup_parent and storage_opt (the storage driver's options, e.g. size)."""
    parent = raw.get("cgroup_parent")
    if isinstance(parent, str) and parent.strip():
        out["cgroup_parent"] = parent.strip()
    options = b.pairs((*path, "storage_opt"), raw.get("storage_opt"))
    for key, _ in options:
        if not key.strip():
            b.err((*path, "storage_opt"), "a storage option needs a name", "e.g. size: 10G")
    if options:
        out["storage_opt"] = options


_THROTTLES = ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops")


def read_blkio(b: Builder, path: Path, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """blkio_config: weight, weight_device and the four throttles (bps: sizes, as compose
    reads them; iops: numbers)."""
    blkio = raw.get("blkio_config")
    if not isinstance(blkio, dict):
        return
    bp = (*path, "blkio_config")
    weight = 0
    if blkio.get("weight") is not None:
        weight = whole(b, (*bp, "weight"), blkio["weight"], "use 10 to 1000") or 0
        if weight and not 10 <= weight <= 1000:
            b.err((*bp, "weight"), f"{weight} is out of range", "use 10 to 1000")
    fields: dict[str, tuple[tuple[str, int], ...]] = {
        "weight_device": _devices(b, (*bp, "weight_device"), blkio.get("weight_device"), "weight")
    }
    for key in _THROTTLES:
        fields[key] = _devices(b, (*bp, key), blkio.get(key), "rate")
    config = BlkioConfig(weight=weight, **fields)
    if config != BlkioConfig():
        out["blkio_config"] = config


def _devices(b: Builder, p: Path, items: Any, kind: str) -> tuple[tuple[str, int], ...]:
    """A blkio device list: [{path, weight}] or [{path, rate}]."""
    if not isinstance(items, list):
        return ()
    out = []
    for i, item in enumerate(items):
        at = (*p, i)
        if not isinstance(item, dict) or "path" not in item or kind not in item:
            b.err(at, f"an entry needs `path` (a device such as /dev/sda) and `{kind}`")
            continue
        device = item["path"]
        if not isinstance(device, str) or not device.startswith("/dev/"):
            b.err((*at, "path"), f'"{device}" is not a device', "e.g. /dev/sda")
            continue
        value: int | None
        if kind == "weight":
            value = whole(b, (*at, kind), item[kind], "use 10 to 1000")
            if value is not None and value and not 10 <= value <= 1000:
                b.err((*at, kind), f"{value} is out of range", "use 10 to 1000")
                continue
        elif str(p[-1]).endswith("_bps"):
            value = b.parsed((*at, kind), parse.size, item[kind])
        else:
            value = whole(b, (*at, kind), item[kind], "write a number of I/Os per second")
            if value is not None and value < 0:
                b.err((*at, kind), f"{value} is not a rate", "use 0 or more I/Os per second")
                continue
        if value is not None:
            out.append((device, value))
    return tuple(out)
