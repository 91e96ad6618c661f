"""An interface of the test's own on this machine: a bridge (no dummy module everywhere),
up, with a /24 no route of the machine holds yet, as a LAN of the host."""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import shutil
import subprocess
from collections.abc import Callable

import pytest

from deployer.docker.subnets import local_routes


def own_bridge(
    prefix: str, later: Callable[[Callable[[], object]], None]
) -> tuple[str, ipaddress.IPv4Network]:
    """(name, network) of a new bridge interface holding the network's first address;
    ``later`` registers its removal. Skips the test where interfaces cannot be made."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip(8) to add an interface")
    taken = [n for _, n in local_routes() if n.version == 4]
    net = ipaddress.IPv4Network("10.97.1.0/24")
    for _ in range(50):
        net = ipaddress.IPv4Network(f"10.{random.randint(96, 99)}.{random.randint(1, 250)}.0/24")
        if not any(net.overlaps(t) for t in taken):
            break
    name = prefix + secrets.token_hex(3)
    made = subprocess.run(
        ["ip", "link", "add", name, "type", "bridge"], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"cannot make a bridge here: {made.stderr.strip()}")
    later(lambda: subprocess.run(["ip", "link", "del", name], check=False, capture_output=True))
    subprocess.run(["ip", "addr", "add", f"{net[1]}/24", "dev", name], check=True, timeout=30)
    subprocess.run(["ip", "link", "set", name, "up"], check=True, timeout=30)
    return name, net
