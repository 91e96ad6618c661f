"""Files from the repository, packed as they are shipped to the hosts.

A relative bind mount, a compose config or a compose secret becomes one ``FileMount``:
its content is packed into a deterministic tar archive (fixed times, sorted names, the
mode and owner the container sees) and named by the archive's SHA-256. The same bytes
with the same mode and owner always give the same name, so a host stores each version
once and a change of one file changes exactly the services that mount it.

Layout of the archive, extracted at the root of the content volume: ``c`` (the file, or
the directory tree) and, last, ``done`` (written only when everything before it was).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile

MAX_BYTES = 32 * 1024 * 1024  # per file or directory: configuration, not data
CONTENT = "c"
DONE = "done"


class PackError(ValueError):
    """The source cannot be packed (missing, unreadable, too large, a special file)."""


def _info(
    name: str, mode: int, uid: int, gid: int, kind: bytes = tarfile.REGTYPE
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = mode & 0o7777
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = 0
    info.type = kind
    return info


def _finish(tar: tarfile.TarFile) -> None:
    tar.addfile(_info(DONE, 0o400, 0, 0), io.BytesIO(b""))


def pack_bytes(data: bytes, mode: int, uid: int = 0, gid: int = 0) -> bytes:
    """One file (a config's or secret's content) as the archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = _info(CONTENT, mode, uid, gid)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        _finish(tar)
    return buf.getvalue()


def read_source(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise PackError(f"cannot read it ({e.strerror or e})") from e
    if len(data) > MAX_BYTES:
        raise PackError(f"it is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    return data


def pack_path(path: str, mode: int | None = None, uid: int = 0, gid: int = 0) -> bytes:
    """A file or a directory tree of the checkout as the archive. ``mode`` None keeps the
    checkout's modes (a bind mount shows the file as it is)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise PackError(
            "it does not exist in the checkout"
            if isinstance(e, FileNotFoundError)
            else f"cannot read it ({e.strerror or e})"
        ) from e
    if stat.S_ISREG(st.st_mode):
        return pack_bytes(read_source(path), st.st_mode if mode is None else mode, uid, gid)
    if not stat.S_ISDIR(st.st_mode):
        raise PackError("it is neither a file nor a directory")
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(CONTENT, st.st_mode, uid, gid, tarfile.DIRTYPE))
        for root, dirs, names in os.walk(path):
            dirs.sort()
            rel_root = os.path.relpath(root, path)
            entries = sorted(dirs + names)
            for name in entries:
                full = os.path.join(root, name)
                rel = os.path.normpath(os.path.join(CONTENT, rel_root, name))
                est = os.lstat(full)
                if stat.S_ISLNK(est.st_mode):
                    info = _info(rel, 0o777, uid, gid, tarfile.SYMTYPE)
                    info.linkname = os.readlink(full)
                    tar.addfile(info)
                elif stat.S_ISDIR(est.st_mode):
                    tar.addfile(_info(rel, est.st_mode, uid, gid, tarfile.DIRTYPE))
                elif stat.S_ISREG(est.st_mode):
                    total += est.st_size
                    if total > MAX_BYTES:
                        raise PackError(
                            f"it holds more than {MAX_BYTES // (1024 * 1024)} MiB: data, not "
                            "configuration"
                        )
                    info = _info(rel, est.st_mode, uid, gid)
                    data = read_source(full)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            # symlinked directories are kept as links, never followed
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        _finish(tar)
    return buf.getvalue()


def digest(archive: bytes) -> str:
    return hashlib.sha256(archive).hexdigest()


def is_dir(path: str) -> bool:
    return os.path.isdir(path)
