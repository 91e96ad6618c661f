"""A service's ``volumes:``: named volumes, absolute binds (checked against the safety
policy), tmpfs, and relative binds (files from the checkout or data, ``repofiles``)."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from deployer.manifest import parse, policy
from deployer.manifest import repofiles as R
from deployer.manifest.model import FileMount, Mount
from deployer.manifest.problems import Path

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder


def mounts(b: Builder, path: Path, raw: Any) -> tuple[Mount, ...]:
    """The mounts; files from the checkout go to ``b.service_files``. Two entries with one
    target are one mount, the last written, as compose keeps them."""
    out: list[Mount] = []
    if not isinstance(raw, list):
        return ()
    read = [(i, one(b, (*path, i), item)) for i, item in enumerate(raw)]
    last = {m.target: i for i, m in read if m is not None}
    for i, mount in read:
        item, p = raw[i], (*path, i)
        if mount is None or last[mount.target] != i:
            continue
        if isinstance(mount, FileMount):
            b.service_files.append(mount)
            continue
        if mount.type == "bind" and mount.source is not None:
            bind_policy(b, p, item, mount)
        if mount.type == "volume" and mount.source and (mount.source not in b.volumes_declared):
            b.err(
                p,
                f'volume "{mount.source}" is not declared in the top-level `volumes:`',
                f"add `volumes: {{{mount.source}: {{}}}}` at the top level, or use an "
                "absolute host path for a bind mount",
            )
        out.append(mount)
    return tuple(out)


def in_checkout(b: Builder, source: str) -> str | None:
    """An absolute bind source inside the project directory (``${PWD}/Caddyfile``, ``PWD``
    being the checkout) as the relative path it names there: on a deploy host that path
    does not exist, so it is the checkout's file (or a data directory), as ``./Caddyfile``."""
    if not b.repo or not source.startswith("/"):
        return None
    base = posixpath.normpath(b.repo.base)
    path = policy.canonical(source)
    if path == base or not R.inside(path, base):
        return None
    return "./" + posixpath.relpath(path, base)


def _warn_unknown_options(b: Builder, p: Path, item: str) -> None:
    parts = item.split(":")
    unknown = parse.unknown_mount_options(parts[2]) if len(parts) == 3 else []
    if unknown:
        words = ", ".join(f'"{w}"' for w in unknown)
        b.warn(
            p,
            f"mount option {words} is no option compose or the engine knows: compose ignores "
            "it, and so does the deployer",
            "separate options with commas (ro,z), or remove it",
        )


def spelled_relative(source: str, *, long_bind: bool) -> str:
    """A host path compose resolves in the project directory though it does not start
    with ``./``: any short-syntax source that starts with a dot (``.psqlrc``), and a
    long-syntax bind's source that is neither absolute nor in a home (``conf/app.ini``).
    Written with ``./`` so that it is read as every other file of the checkout."""
    if source.startswith("/") or R.is_local_source(source) or not source:
        return source
    if source.startswith(".") or long_bind:
        return "./" + source
    return source


def one(b: Builder, p: Path, item: Any) -> Mount | FileMount | None:
    if isinstance(item, str):
        _warn_unknown_options(b, p, item)
        source, sep, rest = item.partition(":")
        rel = in_checkout(b, source) if sep else None
        if rel is None and sep:
            rel = spelled_relative(source, long_bind=False)
        if rel is not None:
            item = f"{rel}:{rest}"
        if R.is_local_source(item.partition(":")[0]):
            return b.repo.short_bind(b, p, item) if b.repo else None
        return b.parsed(p, parse.volume_short, item)
    if not isinstance(item, dict):
        return None
    src = item.get("source")
    if isinstance(src, str):
        src = in_checkout(b, src) or src
        if item.get("type") == "bind":
            src = spelled_relative(src, long_bind=True)
    if (
        item.get("type") == "bind"
        and isinstance(src, str)
        and R.is_local_source(src)
        and isinstance(item.get("target"), str)
        and item["target"].startswith("/")
    ):
        if not b.repo:
            return None
        return b.repo.bind(b, p, src, item["target"], item.get("read_only") is True)
    return mount_long(b, p, item)


def bind_policy(b: Builder, p: Path, item: Any, mount: Mount) -> None:
    """Refuse a bind of a protected host path, whatever its spelling; the problem is
    on the volume's own line and names the `policy.allow` entries that accept it."""
    assert mount.source is not None
    missing = [
        (name, why)
        for name, why in policy.needs(mount.source, read_only=mount.read_only)
        if name not in b.allow
    ]
    if not missing:
        return
    written = b.written((*p, "source") if isinstance(item, dict) else p)
    if not isinstance(item, dict) and isinstance(written, str) and "$" not in written:
        written = written.split(":")[0]
    shown = written if isinstance(written, str) else mount.source
    message, fix = policy.refusal(shown, mount.source, missing)
    b.err(p, message, fix)


def mount_long(b: Builder, p: Path, item: dict[str, Any]) -> Mount | None:
    kind, target, source = item.get("type"), item.get("target"), item.get("source")
    if kind not in ("volume", "bind", "tmpfs") or not isinstance(target, str):
        return None
    if not target.startswith("/"):
        b.err((*p, "target"), f'"{target}" must be an absolute path (start with /)')
        return None
    if kind == "bind":
        if not isinstance(source, str) or not source.startswith("/"):
            b.err(
                (*p, "source"),
                "a bind mount needs an absolute host path as `source`",
                "use an absolute path on the host",
            )
            return None
        source = policy.canonical(source)
    elif kind == "tmpfs":
        if source is not None:
            b.err((*p, "source"), "a tmpfs mount has no source", "remove `source`")
        source = None
    elif isinstance(source, str) and not parse.VOLUME_NAME.match(source):
        b.err((*p, "source"), f'"{source}" is not a volume name')
        return None
    bind: dict[str, Any] = item["bind"] if isinstance(item.get("bind"), dict) else {}
    volume: dict[str, Any] = item["volume"] if isinstance(item.get("volume"), dict) else {}
    selinux = bind.get("selinux") if kind == "bind" else None
    propagation = bind.get("propagation") if kind == "bind" else None
    if propagation is not None and propagation not in parse.PROPAGATION:
        b.err(
            (*p, "bind", "propagation"),
            f'"{propagation}" is not a bind propagation',
            "use " + ", ".join(parse.PROPAGATION),
        )
    tmpfs = tmpfs_options(b, (*p, "tmpfs"), item.get("tmpfs")) if kind == "tmpfs" else (0, 0)
    subpath = volume.get("subpath") if kind == "volume" else None
    if isinstance(subpath, str) and (subpath.startswith("/") or ".." in subpath.split("/")):
        b.err((*p, "volume", "subpath"), f'"{subpath}" must be a path inside the volume')
        return None
    return Mount(
        type=kind,
        target=posixpath.normpath(target),
        source=source if isinstance(source, str) else None,
        read_only=item.get("read_only") is True,
        selinux=selinux if selinux in ("z", "Z") else "",
        nocopy=kind == "volume" and volume.get("nocopy") is True,
        subpath=subpath if isinstance(subpath, str) else "",
        create_host_path=bind.get("create_host_path") is not False,
        propagation=propagation if propagation in parse.PROPAGATION else "",
        tmpfs_size=tmpfs[0],
        tmpfs_mode=tmpfs[1],
    )


def tmpfs_options(b: Builder, p: Path, raw: Any) -> tuple[int, int]:
    """``tmpfs: {size, mode}`` of a long-syntax tmpfs mount: bytes (0: the engine's
    default) and permission bits (0: the engine's default, 1777)."""
    if not isinstance(raw, dict):
        return 0, 0
    size = 0
    if raw.get("size") is not None:
        size = b.parsed((*p, "size"), parse.size, raw["size"]) or 0
    mode = raw.get("mode", 0)
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
        b.err((*p, "mode"), f'"{mode}" is not a file mode', "write it in octal, e.g. 01777")
        mode = 0
    return size, mode
