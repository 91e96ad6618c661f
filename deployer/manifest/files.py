"""Reading input files safely: only regular files, only up to a size limit.

A manifest, compose file or env file that is a device (``/dev/zero``), a FIFO, a socket or a
directory is refused before a byte is read: a device never ends, a FIFO without a writer
blocks forever. The file is opened non-blocking (a FIFO opens at once) and judged by
``fstat`` on the opened descriptor, so what is judged is what would be read. A regular file
over its limit is refused by its size; at most ``limit + 1`` bytes are ever read, so a file
that grows, or lies about its size (``/proc``), cannot make the reader run away either.
"""

from __future__ import annotations

import os
import stat

MIB = 1024 * 1024
MANIFEST_LIMIT = 4 * MIB  # the manifest and each compose file
ENV_FILE_LIMIT = 1 * MIB  # env_file entries and the compose project's .env


class FileRefused(Exception):
    """The file is not something to read; the message says why (and never its content)."""


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def _limit_text(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit} bytes"


def read_limited(path: str, limit: int) -> bytes:
    """The content of the regular file ``path``, at most ``limit`` bytes.

    Raises FileNotFoundError when it does not exist, FileRefused when it is not a regular
    file or is larger than ``limit``, and OSError for other trouble.
    """
    kind = _kind(os.stat(path).st_mode)  # a socket cannot be opened: judge it here
    if kind == "a socket":
        raise FileRefused(f"is {kind}, not a regular file")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        kind = _kind(st.st_mode)
        if kind is not None:
            raise FileRefused(f"is {kind}, not a regular file")
        if st.st_size > limit:
            raise FileRefused(
                f"is {st.st_size / MIB:.1f} MiB, over the limit of {_limit_text(limit)}"
            )
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise FileRefused(f"is over the limit of {_limit_text(limit)}")
        return b"".join(chunks)
    finally:
        os.close(fd)
