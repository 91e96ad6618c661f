"""Compose files as the service source: ``compose: [docker-compose.yml, override.yml]``.

Services, top-level volumes and networks are read from the compose files, merged in order
as docker compose merges them, then the manifest's own ``services:``, ``volumes:`` and
``networks:`` are merged on top (so the manifest may override per service). ``extends``
within a file, ``profiles`` (COMPOSE_PROFILES), ``x-`` extension fields and YAML anchors
work. Every value keeps the file, line and column it was written at, so a problem in a
compose file is reported with the compose file's own line numbers; a compose key the
deployer does not support is refused there, never ignored.

The compose project name (``name:``, else COMPOSE_PROJECT_NAME, else the directory of the
first compose file; normalised as compose does) is kept so the Docker adapter can
recognise the containers compose created.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from deployer.manifest import yamlpos
from deployer.manifest.files import ENV_FILE_LIMIT, MIB, FileRefused, read_limited
from deployer.manifest.interpolate import InterpolationSyntaxError, interpolate
from deployer.manifest.problems import Path, Problem
from deployer.manifest.repofiles import inside, repository_top
from deployer.manifest.schema import COMPOSE_UNSUPPORTED, did_you_mean, validate
from deployer.manifest.yamlpos import Doc

SECTIONS = ("services", "volumes", "networks", "configs", "secrets")
_TOP_KEYS = ("services", "volumes", "networks", "configs", "secrets", "name", "version", "include")
# list or map: merge as maps (the first ones' items are KEY=VALUE, the others' NAME)
_PAIRS_KEYS = ("environment", "labels", "sysctls", "annotations")
_MAP_KEYS = (*_PAIRS_KEYS, "networks", "depends_on")
_LIST_KEYS = ("ports", "expose", "cap_add", "tmpfs", "env_file", "label_file", "extra_hosts", "dns")


def _keyed(item: Any) -> Any:
    """Compose's index of a text entry: its part before ``=``."""
    return item.partition("=")[0] if isinstance(item, str) else item


def _mount_index(base: str) -> Callable[[Any], Any]:
    """Compose's index of a config or secret: its target as written, else ``base/source``."""

    def index(item: Any) -> Any:
        if isinstance(item, dict):
            return item.get("target") or f"{base}/{item.get('source')}"
        return f"{base}/{item}"

    return index


# The other sequences of a service: compose appends an override's entries (its merge
# default); an entry with the index of one already there takes its place (compose's
# unicity rules), None keeps every entry.
_APPENDED: dict[str, Callable[[Any], Any] | None] = {
    "secrets": _mount_index("/run/secrets"),
    "configs": _mount_index(""),
    "cap_drop": _keyed,
    "dns_opt": _keyed,
    "dns_search": _keyed,
    "links": _keyed,
    "profiles": _keyed,
    "group_add": None,
    "security_opt": None,
    "volumes_from": None,
    "external_links": None,
    "device_cgroup_rules": None,
    "post_start": None,
    "pre_stop": None,
}


def project_name(text: str) -> str:
    """Compose's normalisation: lowercase, keep [a-z0-9_-], no leading _ or -."""
    return re.sub(r"[^a-z0-9_-]", "", text.lower()).lstrip("_-")


def parse_dotenv(text: str, lookup: Mapping[str, str]) -> dict[str, str]:
    """See parse_env_lines; malformed lines are skipped."""
    return parse_env_lines(text, lookup)[0]


def parse_env_lines(text: str, lookup: Mapping[str, str]) -> tuple[dict[str, str], list[int]]:
    """KEY=value lines as docker compose v2 reads ``.env`` and ``env_file``: ``export``
    prefixes, ``#`` comments (after a space, when unquoted), single quotes literal,
    double quotes with ``\\n``-style escapes, both possibly spanning lines, and ``${VAR}``
    expanded in unquoted and double-quoted values (from ``lookup``, then the lines above).
    A bare ``KEY`` takes its value from ``lookup``. Returns the values and the numbers of
    the lines that are not KEY=value (compose refuses such a file)."""
    out: dict[str, str] = {}
    bad: list[int] = []

    def expand(value: str) -> str:
        if "$" not in value:
            return value
        try:
            return interpolate(value, {**out, **lookup}).value
        except InterpolationSyntaxError:
            return value

    text = text.replace("\r\n", "\n")
    i, n = 0, len(text)
    while i < n:
        end = text.find("\n", i)
        end = n if end < 0 else end
        line = text[i:end]
        at = i + len(line) - len(line.lstrip())
        i = end + 1
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("export ", "export\t")):
            rest = line[7:].lstrip()
            at += len(line) - len(rest)
            line = rest
        seps = [k for k in (line.find("="), line.find(":")) if k >= 0]
        if not seps:
            key = line.split("#", 1)[0].strip()
            if not key or any(c.isspace() for c in key):
                bad.append(text.count("\n", 0, at) + 1)
            elif key in lookup:
                out[key] = lookup[key]
            continue
        sep = min(seps)
        key = line[:sep].strip()
        if not key or any(c.isspace() for c in key):
            bad.append(text.count("\n", 0, at) + 1)
            continue
        v = at + sep + 1
        while v < end and text[v] in " \t":
            v += 1
        if v < end and text[v] in "'\"":
            quote = text[v]
            j = v + 1
            while j < n and text[j] != quote:
                j += 2 if quote == '"' and text[j] == "\\" else 1
            if j >= n:  # never closed: compose refuses the file; keep it as written
                out[key] = text[v:end]
                continue
            raw = text[v + 1 : j]
            nl = text.find("\n", j)
            i = n if nl < 0 else nl + 1
            out[key] = raw if quote == "'" else expand(_unescape(raw))
            continue
        # a comment starts at ` #` (a space, not a tab); a `#` the value starts with is
        # the value's (`COLOR=#ff0000`, `V= #x` is "#x"), as compose reads it
        value = text[v:end].split(" #", 1)[0]
        out[key] = expand(value.strip())
    return out, bad


def parse_raw_env_lines(text: str, lookup: Mapping[str, str]) -> tuple[dict[str, str], list[int]]:
    """KEY=value lines as docker compose v2 reads an ``env_file`` with ``format: raw``:
    everything after the first ``=`` is the value as written (no quotes, comments, escapes
    or ``${VAR}``); blank lines and lines starting with ``#`` are skipped, leading
    whitespace is not part of the key. A bare ``KEY`` takes its value from ``lookup``.
    Returns the values and the numbers of the lines whose key is empty or holds
    whitespace (compose refuses such a file)."""
    out: dict[str, str] = {}
    bad: list[int] = []
    for number, written in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        line = written.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not key or any(c.isspace() for c in key):
            bad.append(number)
        elif sep:
            out[key] = value
        elif key in lookup:
            out[key] = lookup[key]
    return out, bad


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$"}


def _unescape(raw: str) -> str:
    out: list[str] = []
    k = 0
    while k < len(raw):
        c = raw[k]
        if c == "\\" and k + 1 < len(raw) and raw[k + 1] in _ESCAPES:
            nxt = raw[k + 1]
            out.append("$$" if nxt == "$" else _ESCAPES[nxt])
            k += 2
            continue
        out.append(c)
        k += 1
    return "".join(out)


def read_dotenv(path: str, lookup: Mapping[str, str] | None = None) -> dict[str, str]:
    """The project's ``.env``, which compose reads for interpolation and for its own
    COMPOSE_* settings. A missing or unreadable file is no error: compose ignores it too.
    One that is not a regular file or is over the env file limit raises FileRefused
    (reading it could hang or never end)."""
    try:
        text = read_limited(path, ENV_FILE_LIMIT).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return {}
    return parse_dotenv(text, lookup or {})


# -- positions --------------------------------------------------------------------------


def _get(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def _drop_positions(doc: Doc, prefix: Path) -> None:
    n = len(prefix)
    for table in (doc.values, doc.keys):
        for p in [p for p in table if p[:n] == prefix and len(p) > n]:
            del table[p]
    doc.values.pop(prefix, None)
    doc.item_keys -= {p for p in doc.item_keys if p[:n] == prefix}
    for p in [p for p in doc.written if p[:n] == prefix]:
        del doc.written[p]


def _copy_positions(src: Doc, sprefix: Path, dst: Doc, dprefix: Path) -> None:
    n = len(sprefix)
    for stable, dtable in ((src.values, dst.values), (src.keys, dst.keys)):
        for p, pos in list(stable.items()):
            if p[:n] == sprefix:
                dtable[dprefix + p[n:]] = pos
    dst.item_keys |= {dprefix + p[n:] for p in src.item_keys if p[:n] == sprefix}
    for p, written in src.written.items():
        if p[:n] == sprefix:
            dst.written[dprefix + p[n:]] = written
    if dprefix != sprefix and sprefix and isinstance(sprefix[-1], int):
        dst.written[dprefix] = src.shown(sprefix)  # a list entry placed at another index


def _place(dst: Doc, dpath: Path, src: Doc, spath: Path) -> None:
    """dst[dpath] = a copy of src[spath], with its positions."""
    value = copy.deepcopy(_get(src.data, spath))
    parent = _get(dst.data, dpath[:-1])
    parent[dpath[-1]] = value
    _drop_positions(dst, dpath)
    _copy_positions(src, spath, dst, dpath)
    if spath in src.keys:
        dst.keys[dpath] = src.keys[spath]
    n = len(spath)
    for p in sorted((p for p, t in src.tags.items() if t == "!reset" and p[:n] == spath), key=len):
        _remove(dst, (*dpath, *p[n:]))


def _remove(doc: Doc, path: Path) -> None:
    """Delete doc[path] (a ``!reset``), if it is there."""
    try:
        parent = _get(doc.data, path[:-1])
    except (KeyError, IndexError, TypeError):
        return
    if isinstance(parent, dict) and path[-1] in parent:
        del parent[path[-1]]
        _drop_positions(doc, path)
        doc.keys.pop(path, None)


# -- list-or-map values -----------------------------------------------------------------


def _as_map(doc: Doc, path: Path, key: str) -> None:
    """Turn the list form of a ``_MAP_KEYS`` key at ``path`` into the mapping form, moving
    each item's position to its key (marked as an item's, which the environment's
    variables interpolate as compose does)."""
    value = _get(doc.data, path)
    if not isinstance(value, list):
        return
    out: dict[str, Any] = {}
    moved: list[tuple[Path, Path]] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            return  # wrong types: leave it for the schema to report
        if key in _PAIRS_KEYS:
            k, sep, v = item.partition("=")
            out[k] = v if sep else None
        elif key == "depends_on":
            out[item] = {"condition": "service_started"}
        else:
            out[item] = None
        moved.append(((*path, i), (*path, k if key in _PAIRS_KEYS else item)))
    _get(doc.data, path[:-1])[path[-1]] = out
    for old, new in moved:
        pos = doc.values.pop(old, None)
        if pos is not None:
            doc.values[new] = pos
            doc.keys[new] = pos
        doc.item_keys.add(new)


def _other_driver(d: Any, s: Any) -> bool:
    """Whether an override's ``logging`` names another driver than the one it overrides:
    compose then takes the override's whole (its merge of logging)."""
    if not isinstance(d, dict) or not isinstance(s, dict):
        return False
    return "driver" in d and "driver" in s and d["driver"] != s["driver"]


def hosts_of_mapping(value: dict[str, Any]) -> list[str]:
    """extra_hosts' mapping form as the list compose reads it: ``host: ip``, or ``host:
    [ip, ip]`` (Compose 2.24) for one entry per address."""
    out = []
    for host, ips in value.items():
        for ip in ips if isinstance(ips, list) else [ips]:
            if isinstance(ip, str):
                out.append(f"{host}:{ip}")
    return out


def _as_list(doc: Doc, path: Path, key: str) -> Any:
    """The sequence at ``path``, a single text (``dns: 8.8.8.8``) or extra_hosts' mapping
    form made the list compose reads it as, each item keeping its position."""
    value = _get(doc.data, path)
    if isinstance(value, str):
        value = _get(doc.data, path[:-1])[path[-1]] = [value]
        if path in doc.values:
            doc.values[(*path, 0)] = doc.values[path]
    elif isinstance(value, dict) and key == "extra_hosts":
        value = _get(doc.data, path[:-1])[path[-1]] = hosts_of_mapping(value)
    return value


def _volume_target(item: Any) -> Any:
    if isinstance(item, dict):
        return item.get("target")
    if isinstance(item, str):
        parts = item.split(":")
        return parts[1] if len(parts) >= 2 else parts[0]
    return item


# -- merging ----------------------------------------------------------------------------


def merge(dst: Doc, dpath: Path, src: Doc, spath: Path, *, depth: int = 0) -> None:  # noqa: C901, PLR0912 (compose merge rules)
    """Merge src[spath] into dst[dpath] as compose merges an override file: ``!reset``
    removes the value, ``!override`` replaces it instead of merging."""
    tag = src.tags.get(spath)
    if tag == "!reset":
        _remove(dst, dpath)
        return
    s = _get(src.data, spath)
    try:
        d = _get(dst.data, dpath)
    except (KeyError, IndexError, TypeError):
        _place(dst, dpath, src, spath)
        return
    if tag == "!override":
        _place(dst, dpath, src, spath)
        return
    if spath in src.keys:
        dst.keys[dpath] = src.keys[spath]
    key = dpath[-1] if dpath else ""
    in_service = len(dpath) == 3 and dpath[0] == "services"
    if in_service and key == "logging" and _other_driver(d, s):
        _place(dst, dpath, src, spath)  # another driver: its options are not the first's
        return
    if len(dpath) == 4 and dpath[0] == "services" and dpath[2] == "ulimits":
        _place(dst, dpath, src, spath)  # one limit is replaced whole, never field by field
        return
    if in_service and key in _MAP_KEYS:
        _as_map(dst, dpath, str(key))
        _as_map(src, spath, str(key))
        d, s = _get(dst.data, dpath), _get(src.data, spath)
    if in_service and key in _LIST_KEYS:
        d, s = _as_list(dst, dpath, str(key)), _as_list(src, spath, str(key))
        if isinstance(d, list) and isinstance(s, list):
            for j, item in enumerate(s):
                if item not in d:
                    d.append(None)
                    _place(dst, (*dpath, len(d) - 1), src, (*spath, j))
            return
    aliases = len(dpath) == 5 and dpath[0] == "services" and dpath[2] == "networks"
    if (in_service and key in _APPENDED) or (aliases and key in ("aliases", "link_local_ips")):
        index = _APPENDED.get(str(key), _keyed) if in_service else _keyed
        d, s = _as_list(dst, dpath, str(key)), _as_list(src, spath, str(key))
        if isinstance(d, list) and isinstance(s, list):
            for j, item in enumerate(s):
                at = None
                if index is not None:
                    at = next((i for i, x in enumerate(d) if index(x) == index(item)), None)
                if at is None:
                    d.append(None)
                    at = len(d) - 1
                _place(dst, (*dpath, at), src, (*spath, j))
            return
    if in_service and key == "volumes" and isinstance(d, list) and isinstance(s, list):
        for j, item in enumerate(s):
            target = _volume_target(item)
            at = next((i for i, x in enumerate(d) if _volume_target(x) == target), None)
            if at is None:
                d.append(None)
                at = len(d) - 1
            _place(dst, (*dpath, at), src, (*spath, j))
        return
    if isinstance(d, dict) and isinstance(s, dict) and depth < 50:
        for k in s:
            if k in d or src.tags.get((*spath, k)) == "!reset":
                merge(dst, (*dpath, k), src, (*spath, k), depth=depth + 1)
            else:
                d[k] = None
                _place(dst, (*dpath, k), src, (*spath, k))
        return
    _place(dst, dpath, src, spath)


# -- one compose file -------------------------------------------------------------------


def _resolve_extends(doc: Doc, chain: tuple[str, ...] = ()) -> None:  # noqa: C901, PLR0915 (compose extends rules)
    """Resolve ``extends`` (a service of this file, or ``{file, service}`` of another file,
    whose own relative paths stay relative to that file, as compose resolves them)."""
    services = doc.data.get("services") if isinstance(doc.data, dict) else None
    if not isinstance(services, dict):
        return
    done: set[str] = set()
    chain = (*chain, os.path.abspath(doc.file))

    def other_file(path: Path, rel: str) -> Doc | None:
        full = os.path.normpath(os.path.join(os.path.dirname(doc.file), rel))
        if os.path.abspath(full) in chain:
            doc.problems.append(doc.problem(path, f'`extends` forms a cycle through "{rel}"'))
            return None
        if _outside(doc, path, rel, full, "`extends` file"):
            return None
        other = yamlpos.load_file(full, full)
        if other.data is None:
            if any(p.message == "file not found" for p in other.problems):
                doc.problems.append(
                    doc.problem(
                        path,
                        f'`extends` names the file "{rel}", which is not there (looked at {full})',
                        "fix the path: it is relative to this file",
                    )
                )
            else:
                doc.problems.extend(other.problems)
            return None
        _resolve_extends(other, chain)
        doc.problems.extend(other.problems)
        return other

    def resolve(name: str, stack: tuple[str, ...]) -> None:
        if name in done:
            return
        raw = services.get(name)
        if not isinstance(raw, dict) or "extends" not in raw:
            done.add(name)
            return
        path: Path = ("services", name, "extends")
        ext = raw.pop("extends")  # reported below when it cannot be resolved
        base = ext.get("service") if isinstance(ext, dict) else ext
        rel = ext.get("file") if isinstance(ext, dict) else None
        source: Doc | None = doc
        if rel is not None and not isinstance(rel, str):
            doc.problems.append(doc.problem((*path, "file"), "expected a file path"))
            source = None
        elif isinstance(rel, str) and os.path.abspath(
            os.path.join(os.path.dirname(doc.file), rel)
        ) != os.path.abspath(doc.file):
            source = other_file((*path, "file"), rel)
        # the other file's services: none when it is no compose file (`/etc/passwd` is one
        # YAML string) or its `services` is no mapping (its own problem)
        theirs = source.data.get("services") if source and isinstance(source.data, dict) else None
        theirs = theirs if isinstance(theirs, dict) else {}
        if source is None:
            pass
        elif not isinstance(base, str) or base not in theirs:
            names = list(theirs)
            guess = did_you_mean(str(base), [s for s in names if s != name or source is not doc])
            where = "this file" if source is doc else f'"{rel}"'
            doc.problems.append(
                doc.problem(
                    path,
                    f'`extends` names the unknown service "{base}"'
                    + ("" if source is doc else f" of {where}"),
                    f"did you mean `{guess}`?" if guess else f"name a service of {where}",
                )
            )
        elif source is doc and (base in stack or base == name):
            doc.problems.append(
                doc.problem(path, "`extends` forms a cycle: " + " -> ".join([*stack, base]))
            )
        else:
            if source is doc:
                resolve(base, (*stack, base))
            scratch = Doc(doc.file, {"services": {}})
            scratch.data["services"][name] = None
            _place(scratch, ("services", name), source, ("services", base))
            scratch.keys.pop(("services", name), None)
            own = copy.deepcopy(raw)
            holder = Doc(doc.file, {"services": {name: own}}, doc.values, doc.keys)
            holder.tags, holder.item_keys = doc.tags, doc.item_keys
            merge(scratch, ("services", name), holder, ("services", name))
            merged = scratch.data["services"][name]
            if isinstance(merged, dict):
                merged.pop("extends", None)
            key_pos = doc.keys.get(("services", name))
            services[name] = None
            _place(doc, ("services", name), scratch, ("services", name))
            if key_pos:
                doc.keys[("services", name)] = key_pos
        done.add(name)

    for name in list(services):
        resolve(name, (name,))


def _include(  # noqa: C901, PLR0912 (compose include rules)
    compose: Doc, merged: Doc, chain: tuple[str, ...], project_dir: str
) -> None:
    """Top-level ``include:``: each entry's files (merged in order) are loaded as their own
    project, relative to the including file, and their resources added to the project; a
    resource the including file defines as well is an error, as in compose. An included
    file's relative paths are its own directory's, or ``project_directory``'s."""
    entries = compose.data.pop("include", None)
    if entries is None:
        return
    if not isinstance(entries, list):
        compose.problems.append(compose.problem(("include",), "expected a list of files"))
        return
    here = os.path.dirname(compose.file)
    chain = (*chain, os.path.abspath(compose.file))
    for i, item in enumerate(entries):
        at: Path = ("include", i)
        paths = item.get("path") if isinstance(item, dict) else item
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            compose.problems.append(
                compose.problem(at, "expected a file path, or a mapping with `path:`")
            )
            continue
        if isinstance(item, dict):
            for key in item:
                if key not in ("path", "project_directory", "env_file"):
                    compose.problems.append(
                        compose.problem(
                            (*at, key),
                            f"`include.{key}` is not supported yet",
                            "remove it",
                            key=True,
                        )
                    )
        env = _include_env(compose, at, item.get("env_file") if isinstance(item, dict) else None)
        given = item.get("project_directory") if isinstance(item, dict) else None
        base = os.path.normpath(os.path.join(here, given)) if isinstance(given, str) else None
        part = Doc(compose.file, {s: {} for s in SECTIONS})
        for j, rel in enumerate(paths):
            full = os.path.normpath(os.path.join(here, rel))
            where: Path = at if isinstance(item, str) else (*at, "path")
            if isinstance(item, dict) and isinstance(item.get("path"), list):
                where = (*at, "path", j)
            if os.path.abspath(full) in chain:
                compose.problems.append(
                    compose.problem(where, f'`include` of "{rel}" forms a cycle')
                )
                continue
            if _outside(compose, where, rel, full, "included file"):
                continue
            sub = yamlpos.load_file(full, full)
            if sub.data is None:
                if any(p.message == "file not found" for p in sub.problems):
                    compose.problems.append(
                        compose.problem(
                            where,
                            f'included file "{rel}" not found (looked at {full})',
                            "fix the path: it is relative to this file",
                        )
                    )
                else:
                    compose.problems.extend(sub.problems)
                continue
            _check_top(sub)
            if isinstance(sub.data, dict):
                _include(sub, part, chain, project_dir)
                _resolve_extends(sub)
                _rebase_included(sub, base or os.path.dirname(full), project_dir)
                for section in SECTIONS:
                    if isinstance(sub.data.get(section), dict):
                        merge(part, (section,), sub, (section,))
            compose.problems.extend(sub.problems)
        for section in SECTIONS:
            own = compose.data.get(section)
            for key in list(part.data[section]):
                if isinstance(own, dict) and key in own:
                    compose.problems.append(
                        compose.problem(
                            (section, key),
                            f"{section}.{key} conflicts with the one the included file defines",
                            "rename one of them, or change it in the included file",
                            key=True,
                        )
                    )
            if part.data[section]:
                merge(merged, (section,), part, (section,))
            for key in part.data[section]:  # the entry's env file, under a nested one's
                scoped = {**env, **part.scoped_env.get((section, key), {})}
                if scoped:
                    merged.scoped_env[(section, key)] = scoped


def _include_env(compose: Doc, at: Path, raw: Any) -> dict[str, str]:
    """An include's ``env_file`` (a path or a list, relative to the including file): the
    variables its files are interpolated with, below every other source, as compose reads
    them."""
    files = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    out: dict[str, str] = {}
    for j, rel in enumerate(files):
        where: Path = (*at, "env_file") if isinstance(raw, str) else (*at, "env_file", j)
        full = os.path.normpath(os.path.join(os.path.dirname(compose.file), str(rel)))
        if _outside(compose, where, str(rel), full, "env file"):
            continue
        if not os.path.isfile(full):
            compose.problems.append(
                compose.problem(where, f'env file "{rel}" not found (looked at {full})')
            )
            continue
        try:
            out.update(read_dotenv(full, out))
        except FileRefused as e:
            compose.problems.append(compose.problem(where, f'env file "{rel}" {e}'))
    return out


def _rebase_included(doc: Doc, base: str, project_dir: str) -> None:
    """An included file's relative bind sources and build contexts are its ``base``'s (its
    directory, or the include's ``project_directory``); the pipeline reads them from the
    project directory, so they are rewritten relative to it (``./conf/x`` of ``sub/`` is
    ``./sub/conf/x``). An ``env_file`` is read from the file's own directory: rewritten
    relative to it when the base is another."""
    if not isinstance(doc.data, dict):
        return
    file_dir = os.path.dirname(os.path.abspath(doc.file))

    def moved(rel: str, to: str) -> str:
        return _relative(rel, base, to)

    services = doc.data.get("services")
    for raw in services.values() if isinstance(services, dict) else ():
        if not isinstance(raw, dict):
            continue
        volumes = raw.get("volumes")
        for i, item in enumerate(volumes if isinstance(volumes, list) else []):
            if isinstance(item, str) and item.startswith("."):
                src, sep, rest = item.partition(":")
                volumes[i] = moved(src, project_dir) + sep + rest  # type: ignore[index]
            elif isinstance(item, dict) and str(item.get("source", "")).startswith("."):
                item["source"] = moved(item["source"], project_dir)
        build = raw.get("build")
        if isinstance(build, str) and not _REMOTE.match(build):
            raw["build"] = moved(build, project_dir)
        elif isinstance(build, dict) and not _REMOTE.match(str(build.get("context", "."))):
            build["context"] = moved(str(build.get("context", ".")), project_dir)
        if base != file_dir:
            _move_env_files(raw, lambda rel: moved(rel, file_dir))
    for section in ("configs", "secrets"):
        top = doc.data.get(section)
        for spec in top.values() if isinstance(top, dict) else ():
            if isinstance(spec, dict) and isinstance(spec.get("file"), str):
                spec["file"] = moved(spec["file"], project_dir)


_REMOTE = re.compile(r"^(?:[a-z]+://|git@)")  # a build context that is a git URL


def _profile(text: str, lookup: Mapping[str, str]) -> str:
    """A profile name as compose sees it: interpolated first (``${DB_PROFILE:-}``)."""
    try:
        return interpolate(text, lookup).value
    except InterpolationSyntaxError:
        return text  # reported where the file is interpolated


def _apply_profiles(doc: Doc, profiles: set[str], lookup: Mapping[str, str]) -> None:
    services = doc.data.get("services") if isinstance(doc.data, dict) else None
    if not isinstance(services, dict):
        return
    for name in list(services):
        raw = services[name]
        if not isinstance(raw, dict) or "profiles" not in raw:
            continue
        wanted = raw["profiles"]
        if not isinstance(wanted, list) or not all(isinstance(p, str) for p in wanted):
            doc.problems.append(
                doc.problem(("services", name, "profiles"), "expected a list of profile names")
            )
            continue
        if profiles & {_profile(p, lookup) for p in wanted} or "*" in profiles:
            del raw["profiles"]
        else:
            del services[name]


def _check_top(doc: Doc) -> None:
    if doc.data is None and not doc.problems:
        doc.data = {}  # an empty file (comments only): nothing to merge, as compose reads it
    if not isinstance(doc.data, dict):
        doc.problems.append(
            doc.problem((), "a compose file must be a mapping with `services:`", None)
        )
        return
    for key in list(doc.data):
        if key in _TOP_KEYS or key.startswith("x-"):
            continue
        path: Path = (key,)
        if key in COMPOSE_UNSUPPORTED or key in ("models",):
            doc.problems.append(
                doc.problem(
                    path,
                    f"`{key}` is a Compose key that the deployer does not support yet",
                    "remove it",
                    key=True,
                )
            )
        else:
            guess = did_you_mean(key, list(_TOP_KEYS))
            doc.problems.append(
                doc.problem(
                    path,
                    f"unknown key `{key}` in a compose file",
                    f"did you mean `{guess}`?"
                    if guess
                    else "allowed: services, volumes, networks, name, x-*",
                    key=True,
                )
            )
    for section in SECTIONS:
        if section in doc.data and not isinstance(doc.data[section], dict | None):
            doc.problems.append(doc.problem((section,), f"`{section}` must be a mapping"))
            del doc.data[section]


DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = (
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)


def _project_files(
    doc: Doc, path: Path, project_dir: str, cenv: Mapping[str, str]
) -> list[tuple[Path, str, str]]:
    """The files of ``compose: <directory>``, as ``docker compose`` run in that directory
    finds them: COMPOSE_FILE (split on COMPOSE_PATH_SEPARATOR), else the first default
    name and its override file."""
    listed = cenv.get("COMPOSE_FILE", "")
    if listed:
        sep = cenv.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        return [(path, f, os.path.join(project_dir, f)) for f in listed.split(sep) if f]
    out = []
    for group in (DEFAULT_FILES, OVERRIDE_FILES):
        found = next((f for f in group if os.path.isfile(os.path.join(project_dir, f))), None)
        if found:
            out.append((path, found, os.path.join(project_dir, found)))
    if not out:
        doc.problems.append(
            doc.problem(
                path,
                f"no compose file in the directory {project_dir}",
                "add compose.yaml there, name the files, or set COMPOSE_FILE in its .env",
            )
        )
    return out


# The checkout the compose files must be read from (None: no boundary), set per manifest.
_CHECKOUT: ContextVar[str | None] = ContextVar("compose_checkout", default=None)


def compose_checkout(manifest_dir: str, environ: Mapping[str, str]) -> str | None:
    """The checkout the compose files, the files they extend or include and their env
    files must be in: the CI job's project directory (``CI_PROJECT_DIR``) when the
    manifest is in it, else the repository above the manifest (``.git``); None (no
    boundary) for a manifest outside any repository, run by hand."""
    return repository_top(manifest_dir, manifest_dir, environ)


def _outside(doc: Doc, where: Path, rel: str, full: str, what: str) -> bool:
    """Refuse (True) a file read for the compose project that is outside the checkout:
    on a runner shared by several projects, another project's checkout (its compose
    files, its `.env`) lies beside this one."""
    root = _CHECKOUT.get()
    if root is None or inside(os.path.realpath(full), root):
        return False
    doc.problems.append(
        doc.problem(
            where,
            f'{what} "{rel}" is outside the repository checkout ({root}): only the '
            "repository's files are read",
            "keep the compose files, the files they extend or include and their env files "
            "in the repository",
        )
    )
    return True


def merge_compose(doc: Doc, environ: Mapping[str, str]) -> None:  # noqa: C901, PLR0912, PLR0915 (compose merge rules)
    """Replace the manifest's services, volumes and networks by the merge of its compose
    files and its own entries; record the compose project name and the files read.

    As ``docker compose`` does: the project directory is the first file's directory (or
    the directory named by ``compose: <dir>``); its ``.env`` is read first, and its
    COMPOSE_PROFILES, COMPOSE_PROJECT_NAME, COMPOSE_FILE and COMPOSE_PATH_SEPARATOR apply
    unless the environment sets them; profiles select services after the files are merged."""
    data = doc.data
    files = data.get("compose")
    entries: list[tuple[Path, Any]] = (
        [(("compose",), files)]
        if isinstance(files, str)
        else [(("compose", i), f) for i, f in enumerate(files)]
        if isinstance(files, list)
        else []
    )
    entries = [(p, e) for p, e in entries if isinstance(e, str)]
    if not entries:
        return  # the schema reports a wrong type or an empty list
    base = os.path.dirname(doc.file)
    _CHECKOUT.set(compose_checkout(os.path.dirname(os.path.abspath(doc.file)), environ))
    entries = [
        (p, e)
        for p, e in entries
        if not _outside(doc, p, e, os.path.normpath(os.path.join(base, e)), "compose file")
    ]
    if not entries:
        return
    first = os.path.normpath(os.path.join(base, entries[0][1]))
    is_dir = len(entries) == 1 and os.path.isdir(first)
    project_dir = os.path.abspath(first if is_dir else os.path.dirname(first))
    dotenv = os.path.join(project_dir, ".env")
    try:
        doc.compose_dotenv = read_dotenv(dotenv, environ)
    except FileRefused as e:
        doc.problems.append(
            doc.problem(
                entries[0][0],
                f"the compose project's .env file ({dotenv}) {e}; it is not read",
                "replace it by a regular KEY=value file of at most "
                f"{ENV_FILE_LIMIT // MIB} MiB, or remove it",
            )
        )
    cenv = {**doc.compose_dotenv, **environ}
    if is_dir:  # its COMPOSE_FILE (of the environment or .env) names the files
        found = [
            (p, e, full)
            for p, e, full in _project_files(doc, entries[0][0], project_dir, cenv)
            if not _outside(doc, p, e, full, "compose file")
        ]
    else:
        found = [(p, e, os.path.normpath(os.path.join(base, e))) for p, e in entries]
    merged = Doc(doc.file, {s: {} for s in SECTIONS})
    # as compose splits it: unset or empty is the one profile "", which a service's
    # `profiles: [""]` (an unset `${X:-}`) names, so such a service runs by default
    profiles = {p.strip() for p in cenv.get("COMPOSE_PROFILES", "").split(",")}
    name: str | None = None
    name_at: Problem | None = None
    for path, entry, shown in found:
        compose = yamlpos.load_file(shown, shown)
        if compose.problems and compose.data is None:
            for p in compose.problems:
                if p.message == "file not found":
                    doc.problems.append(
                        doc.problem(
                            path,
                            f'compose file "{entry}" not found (looked at {shown})',
                            "fix the path: it is relative to the "
                            + ("project directory" if is_dir else "manifest"),
                        )
                    )
                elif p.line == 0:  # the file as a whole: report it where it is named
                    doc.problems.append(
                        doc.problem(path, f'compose file "{entry}": {p.message}', p.fix)
                    )
                else:
                    doc.problems.append(p)
            continue
        doc.compose_files.append(shown)
        _check_top(compose)
        if isinstance(compose.data, dict):
            _include(compose, merged, (), project_dir)
            _resolve_extends(compose)
            _rebase(compose, os.path.dirname(os.path.abspath(shown)), project_dir)
            _deployer_files(doc, compose, os.path.dirname(os.path.abspath(shown)), project_dir)
            compose.problems.extend(_check_file(compose))
            if isinstance(compose.data.get("name"), str):
                name = compose.data["name"]
                name_at = compose.problem(("name",), "")
            for section in SECTIONS:
                if isinstance(compose.data.get(section), dict):
                    merge(merged, (section,), compose, (section,))
        doc.problems.extend(compose.problems)
    _apply_profiles(merged, profiles, cenv)
    doc.scoped_env.update(merged.scoped_env)
    doc.problems.extend(merged.problems)
    for section in SECTIONS:
        if isinstance(data.get(section), dict):
            merge(merged, (section,), doc, (section,))
        elif section in data:
            continue  # a wrong type: the schema reports it where it is written
        if merged.data[section] or section == "services":
            key_pos = doc.keys.get((section,)) or merged.keys.get((section,))
            _drop_positions(doc, (section,))
            data[section] = merged.data[section]
            _copy_positions(merged, (section,), doc, (section,))
            doc.values.pop((section,), None)
            if key_pos:
                doc.keys[(section,)] = key_pos
    if not data["services"] and doc.compose_files:
        enabled = profiles - {""}
        doc.problems.append(
            doc.problem(
                ("compose",),
                "the compose files define no active service"
                + (f" (COMPOSE_PROFILES={','.join(sorted(enabled))})" if enabled else ""),
                "check the files and their `profiles:`",
                key=True,
            )
        )
    if name is not None and "$" in name:
        try:
            name = interpolate(name, cenv).value
        except InterpolationSyntaxError:
            name = None
    if not name:
        name, name_at = cenv.get("COMPOSE_PROJECT_NAME"), None
    source = "COMPOSE_PROJECT_NAME" + ("" if "COMPOSE_PROJECT_NAME" in environ else " in .env")
    if name and name_at is None and project_name(name) != name:
        # compose normalises `name:` and the directory's name, and refuses any other name
        at = doc.problem(("compose",), "", key=True)
        doc.problems.append(
            Problem(
                at.file,
                at.line,
                at.column,
                at.path,
                f'invalid project name "{name}" ({source}): it must consist only of lowercase '
                "letters, digits, hyphens and underscores, and start with a letter or digit",
                "write it in lowercase, as docker compose requires",
            )
        )
    doc.compose_project = project_name(name or os.path.basename(project_dir)) or None


def _check_file(compose: Doc) -> list[Problem]:
    """Compose validates each file against its schema before it merges them: a wrong value
    that a later file (or the manifest) replaces, or a ``!reset`` removes, is still refused,
    named where it is written. The file's sections as its own merge reads them: the values
    it resets gone, ``extends`` resolved, ``profiles`` (selected after the merge) aside."""
    part = {s: copy.deepcopy(compose.data[s]) for s in SECTIONS if s in compose.data}
    for path in sorted((p for p, t in compose.tags.items() if t == "!reset"), key=len):
        parent: Any = part
        for key in path[:-1]:
            try:
                parent = parent[key]
            except (KeyError, IndexError, TypeError):
                break
        else:
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
    services = part.get("services")
    for svc in services.values() if isinstance(services, dict) else ():
        if isinstance(svc, dict):
            svc.pop("profiles", None)
    return validate(compose, part, sections=True)


def _deployer_files(doc: Doc, compose: Doc, file_dir: str, project_dir: str) -> None:
    """A compose file's ``x-deployer-files: {data: [...], config: [...]}`` (compose ignores
    ``x-`` keys): added to the manifest's ``files:``, its paths made relative to the project
    directory, each keeping its place in the compose file for messages."""
    ext = compose.data.get("x-deployer-files")
    if not isinstance(ext, dict):
        return
    files = doc.data.setdefault("files", {})
    if not isinstance(files, dict):
        return  # a wrong type in the manifest: the schema reports it there
    for key, items in ext.items():
        if not isinstance(items, list):
            files[key] = items  # the schema names the mistake
            _copy_positions(compose, ("x-deployer-files", key), doc, ("files", key))
            continue
        into = files.setdefault(key, [])
        if not isinstance(into, list):
            continue
        for i, item in enumerate(items):
            moved = item
            if isinstance(item, str) and file_dir != project_dir and not item.startswith("~"):
                moved = "./" + os.path.relpath(os.path.join(file_dir, item), project_dir)
            _copy_positions(compose, ("x-deployer-files", key, i), doc, ("files", key, len(into)))
            into.append(moved)


def _rebase(doc: Doc, file_dir: str, project_dir: str) -> None:
    """Relative paths of an override file in another directory are relative to the project
    directory, as compose resolves them. Bind sources and build contexts are resolved from
    the project directory already (the checkout's files); an ``env_file`` is read from the
    directory of the file that names it, so it is rewritten relative to that directory."""
    if file_dir == project_dir or not isinstance(doc.data, dict):
        return

    def moved(rel: str) -> str:
        return _relative(rel, project_dir, file_dir)

    services = doc.data.get("services")
    for raw in services.values() if isinstance(services, dict) else ():
        if isinstance(raw, dict):
            _move_env_files(raw, moved)


def _relative(rel: str, base: str, to: str) -> str:
    """``rel``, a path relative to ``base``, as a path relative to ``to``; an absolute or
    home path stays as it is. It keeps a leading ``./``: `config/x.yml` would read as a
    volume name."""
    if os.path.isabs(rel) or rel.startswith("~"):
        return rel
    out = os.path.relpath(os.path.join(base, rel), to)
    return out if out.startswith(".") else f"./{out}"


def _move_env_files(raw: dict[str, Any], moved: Callable[[str], str]) -> None:
    """A service's ``env_file`` and ``label_file`` paths, each through ``moved``."""
    for key in ("env_file", "label_file"):
        env_file = raw.get(key)
        if isinstance(env_file, str):
            raw[key] = moved(env_file)
        elif isinstance(env_file, list):
            for i, item in enumerate(env_file):
                if isinstance(item, str):
                    env_file[i] = moved(item)
                elif isinstance(item, dict) and isinstance(item.get("path"), str):
                    item["path"] = moved(item["path"])
