"""A service's variables: ``env_file:`` first, then ``environment:`` (a mapping or a list),
as docker compose v2 reads them; a key without a value comes from the CI variables."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from deployer.manifest import files
from deployer.manifest.compose import parse_env_lines, parse_raw_env_lines
from deployer.manifest.problems import Path, Problem
from deployer.manifest.readers.values import ENV_KEY, scalar_text

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder


def service_environment(b: Builder, path: Path, raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    env = env_files(b, path, raw.get("env_file"))
    value = raw.get("environment")
    epath = (*path, "environment")
    if isinstance(value, dict):
        env.update(from_mapping(b, epath, value))
    elif isinstance(value, list):
        env.update(from_list(b, epath, value))
    for k in unset_names(b, value):
        env.pop(k, None)  # compose unsets it, an env_file's value too
    return tuple(sorted(env.items()))


def unset_names(b: Builder, value: Any) -> set[str]:
    """The keys ``environment:`` names without a value (``- KEY``, ``KEY:``) that no
    variable sets: compose gives the container no such variable, even one an ``env_file``
    sets (the engine takes a bare ``KEY`` as "unset it")."""
    if isinstance(value, dict):
        return {k for k, v in value.items() if v is None and k not in b.lookup}
    last: dict[str, bool] = {}
    for item in value if isinstance(value, list) else ():
        if isinstance(item, str):
            k, sep, _ = item.partition("=")
            last[k] = not sep and k not in b.lookup
    return {k for k, unset in last.items() if unset}


def env_files(b: Builder, path: Path, env_file: Any) -> dict[str, str]:
    env: dict[str, str] = {}
    entries: list[tuple[Path, Any]] = []
    if isinstance(env_file, str):
        entries = [((*path, "env_file"), env_file)]
    elif isinstance(env_file, list):
        entries = [((*path, "env_file", i), f) for i, f in enumerate(env_file)]
    seen: set[str] = set()
    for fpath, spec in entries:
        required, raw = True, False
        name = spec
        if isinstance(spec, dict):
            required = spec.get("required", True) is not False
            name = spec.get("path")
            fmt = spec.get("format")
            raw = fmt == "raw"
            if fmt is not None and not raw:
                b.err(
                    (*fpath, "format"),
                    f'env_file format "{fmt}" is not one compose reads',
                    "leave `format:` out (KEY=value lines, as .env), or write `format: raw`",
                )
                continue
        if isinstance(name, str) and name not in seen:  # compose reads a file once, first
            seen.add(name)
            env.update(read_env_file(b, fpath, name, required=required, raw=raw))
    return env


def from_mapping(b: Builder, epath: Path, value: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for k, v in value.items():
        if not ENV_KEY.match(k):
            b.err((*epath, k), f'"{k}" is not a variable name', key=True)
        elif v is None:
            if k in b.lookup:
                env[k] = b.lookup[k]
        else:
            env[k] = scalar_text(v)
    return env


def from_list(b: Builder, epath: Path, value: list[Any]) -> dict[str, str]:
    """``- KEY=VALUE`` or ``- KEY`` (the CI variable's value, else unset); a key written
    twice takes its last entry, as compose reads the list (a mapping of its entries)."""
    env: dict[str, str] = {}
    seen: set[str] = set()
    for i, item in enumerate(value):
        if not isinstance(item, str):
            continue
        k, sep, v = item.partition("=")
        if not ENV_KEY.match(k):
            b.err((*epath, i), "expected KEY=value (value not shown: a secret)")
            continue
        if k in seen:
            b.warn((*epath, i), f"variable {k} is set twice: this last one counts", "remove one")
        seen.add(k)
        env.pop(k, None)
        if sep:
            env[k] = v
        elif k in b.lookup:
            env[k] = b.lookup[k]
    return env


def _read_key_file(
    b: Builder, path: Path, key: str, name: str, refused_fix: str, missing_fix: str | None
) -> tuple[str, str] | None:
    """A KEY=value file named at ``path`` (``env_file``, ``label_file``): relative to the
    file naming it and inside the checkout, at most ``files.ENV_FILE_LIMIT`` bytes; (its
    full path, its text), or None when it is not read (a problem said so, unless it is
    missing and ``missing_fix`` is None: not required)."""
    base = os.path.dirname(b.doc.pos(path).file)
    full = os.path.join(base, name)
    if not os.path.isabs(name) and b.repo and b.repo.escapes(b, path, full, name, key=key):
        return None  # a relative path out of the checkout: not read
    if os.path.isabs(name) and b.repo and b.repo.job_file(b, path, full, name, key=key):
        return None  # a file of the job's machine no variable names: not read
    try:
        return full, files.read_limited(full, files.ENV_FILE_LIMIT).decode("utf-8-sig")
    except files.FileRefused as e:
        b.err(path, f'{key} "{name}" {e}; it is not read', refused_fix)
    except FileNotFoundError:
        if missing_fix is not None:
            b.err(path, f'{key} "{name}" not found (looked at {full})', missing_fix)
    except (OSError, UnicodeDecodeError) as e:
        b.err(path, f'{key} "{name}" cannot be read: {e.__class__.__name__}')
    return None


def read_env_file(
    b: Builder, path: Path, name: str, *, required: bool, raw: bool = False
) -> dict[str, str]:
    read = _read_key_file(
        b,
        path,
        "env_file",
        name,
        f"point to a regular KEY=value file of at most {files.ENV_FILE_LIMIT // files.MIB} MiB",
        "create it, fix the path (relative to this file), or set required: false"
        if required
        else None,
    )
    if read is None:
        return {}
    full, text = read
    # as docker compose v2 reads it
    out, bad = (parse_raw_env_lines if raw else parse_env_lines)(text, b.lookup)
    for n in bad:
        b.problems.append(
            Problem(
                full,
                n,
                1,
                "",
                "expected KEY=value (value not shown: a secret)",
                "fix or remove the line",
            )
        )
    return out


def label_files(b: Builder, path: Path, raw: Any) -> dict[str, str]:
    """``label_file:`` (a path or a list), as compose reads it: KEY=value lines, each file
    over the ones before; relative to the file naming it and inside the checkout, as an
    ``env_file``; a ``${VAR}`` in a file reads the labels above it, never the variables."""
    entries: list[tuple[Path, Any]] = []
    if isinstance(raw, str):
        entries = [((*path, "label_file"), raw)]
    elif isinstance(raw, list):
        entries = [((*path, "label_file", i), f) for i, f in enumerate(raw)]
    labels: dict[str, str] = {}
    for fpath, name in entries:
        if not isinstance(name, str):
            continue
        read = _read_key_file(
            b,
            fpath,
            "label_file",
            name,
            "point to a regular KEY=value file",
            "create it, or fix the path (relative to this file)",
        )
        if read is None:
            continue
        full, text = read
        out, bad = parse_env_lines(text, dict(labels))
        for n in bad:
            b.problems.append(
                Problem(full, n, 1, "", "expected KEY=value", "fix or remove the line")
            )
        labels.update(out)
    return labels
