"""The Docker adapter: connections, registry, observe, containers, health, lock, releases."""

import sys

# docker imports paramiko (~100 ms with cryptography and invoke) for ssh:// support, even
# when no host uses ssh. Import docker without it; deployer.docker.ssh imports it (and
# docker's ssh transport) when an ssh:// host is connected.
if "docker" not in sys.modules and "paramiko" not in sys.modules:
    sys.modules["paramiko"] = None  # type: ignore[assignment]
    try:
        import docker  # noqa: F401
    finally:
        del sys.modules["paramiko"]
