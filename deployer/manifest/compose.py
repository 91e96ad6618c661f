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
from collections.abc import Mapping
from typing import Any

from deployer.manifest import yamlpos
from deployer.manifest.interpolate import InterpolationSyntaxError, interpolate
from deployer.manifest.problems import Path
from deployer.manifest.schema import COMPOSE_UNSUPPORTED, did_you_mean
from deployer.manifest.yamlpos import Doc

SECTIONS = ("services", "volumes", "networks")
_TOP_KEYS = ("services", "volumes", "networks", "name", "version")
_MAP_KEYS = ("environment", "labels", "networks", "depends_on")  # list or map: merge as maps
_LIST_KEYS = ("ports", "expose", "cap_add", "tmpfs", "env_file", "extra_hosts", "dns")


def project_name(text: str) -> str:
    """Compose's normalisation: lowercase, keep [a-z0-9_-], no leading _ or -."""
    return re.sub(r"[^a-z0-9_-]", "", text.lower()).lstrip("_-")


def read_dotenv(path: str) -> dict[str, str]:
    """The project's ``.env`` (KEY=value lines), which compose reads for interpolation.
    A missing or unreadable file is no error: compose ignores it too."""
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return out
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        k, sep, v = text.removeprefix("export ").partition("=")
        k, v = k.strip(), v.strip()
        if not sep or not k:
            continue
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        elif " #" in v:
            v = v.split(" #", 1)[0].rstrip()
        out[k] = v
    return out


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


def _copy_positions(src: Doc, sprefix: Path, dst: Doc, dprefix: Path) -> None:
    n = len(sprefix)
    for stable, dtable in ((src.values, dst.values), (src.keys, dst.keys)):
        for p, pos in list(stable.items()):
            if p[:n] == sprefix:
                dtable[dprefix + p[n:]] = pos


def _place(dst: Doc, dpath: Path, src: Doc, spath: Path) -> None:
    """dst[dpath] = a copy of src[spath], with its positions."""
    value = copy.deepcopy(_get(src.data, spath))
    parent = _get(dst.data, dpath[:-1])
    parent[dpath[-1]] = value
    _drop_positions(dst, dpath)
    _copy_positions(src, spath, dst, dpath)
    if spath in src.keys:
        dst.keys[dpath] = src.keys[spath]


# -- list-or-map values -----------------------------------------------------------------


def _as_map(doc: Doc, path: Path, key: str) -> None:
    """Turn the list form of environment/labels/networks/depends_on at ``path`` into the
    mapping form, moving each item's position to its key."""
    value = _get(doc.data, path)
    if not isinstance(value, list):
        return
    out: dict[str, Any] = {}
    moved: list[tuple[Path, Path]] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            return  # wrong types: leave it for the schema to report
        if key in ("environment", "labels"):
            k, sep, v = item.partition("=")
            out[k] = v if sep else None
        elif key == "depends_on":
            out[item] = {"condition": "service_started"}
        else:
            out[item] = None
        moved.append(((*path, i), (*path, k if key in ("environment", "labels") else item)))
    _get(doc.data, path[:-1])[path[-1]] = out
    for old, new in moved:
        pos = doc.values.pop(old, None)
        if pos is not None:
            doc.values[new] = pos
            doc.keys[new] = pos


def _volume_target(item: Any) -> Any:
    if isinstance(item, dict):
        return item.get("target")
    if isinstance(item, str):
        parts = item.split(":")
        return parts[1] if len(parts) >= 2 else parts[0]
    return item


# -- merging ----------------------------------------------------------------------------


def merge(dst: Doc, dpath: Path, src: Doc, spath: Path, *, depth: int = 0) -> None:
    """Merge src[spath] into dst[dpath] as compose merges an override file."""
    s = _get(src.data, spath)
    try:
        d = _get(dst.data, dpath)
    except (KeyError, IndexError, TypeError):
        _place(dst, dpath, src, spath)
        return
    if spath in src.keys:
        dst.keys[dpath] = src.keys[spath]
    key = dpath[-1] if dpath else ""
    in_service = len(dpath) == 3 and dpath[0] == "services"
    if in_service and key in _MAP_KEYS:
        _as_map(dst, dpath, str(key))
        _as_map(src, spath, str(key))
        d, s = _get(dst.data, dpath), _get(src.data, spath)
    if in_service and key in _LIST_KEYS:
        for doc, path in ((dst, dpath), (src, spath)):
            value = _get(doc.data, path)
            if isinstance(value, str):
                _get(doc.data, path[:-1])[path[-1]] = [value]
                if path in doc.values:
                    doc.values[(*path, 0)] = doc.values[path]
            elif isinstance(value, dict) and key == "extra_hosts":
                _get(doc.data, path[:-1])[path[-1]] = [f"{h}:{ip}" for h, ip in value.items()]
        d, s = _get(dst.data, dpath), _get(src.data, spath)
        if isinstance(d, list) and isinstance(s, list):
            for j, item in enumerate(s):
                if item not in d:
                    d.append(None)
                    _place(dst, (*dpath, len(d) - 1), src, (*spath, j))
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
            if k in d:
                merge(dst, (*dpath, k), src, (*spath, k), depth=depth + 1)
            else:
                d[k] = None
                _place(dst, (*dpath, k), src, (*spath, k))
        return
    _place(dst, dpath, src, spath)


# -- one compose file -------------------------------------------------------------------


def _resolve_extends(doc: Doc) -> None:
    services = doc.data.get("services") if isinstance(doc.data, dict) else None
    if not isinstance(services, dict):
        return
    done: set[str] = set()

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
        if isinstance(ext, dict) and ext.get("file") not in (None, os.path.basename(doc.file)):
            doc.problems.append(
                doc.problem(
                    (*path, "file"),
                    "`extends` from another file is not supported yet",
                    "extend a service of the same file, or merge the files with "
                    "`compose: [base.yml, this.yml]`",
                )
            )
        elif not isinstance(base, str) or base not in services:
            guess = did_you_mean(str(base), [s for s in services if s != name])
            doc.problems.append(
                doc.problem(
                    path,
                    f'`extends` names the unknown service "{base}"',
                    f"did you mean `{guess}`?" if guess else "name a service of this file",
                )
            )
        elif base in stack or base == name:
            doc.problems.append(
                doc.problem(path, "`extends` forms a cycle: " + " -> ".join([*stack, base]))
            )
        else:
            resolve(base, (*stack, base))
            scratch = Doc(doc.file, {"services": {}})
            scratch.data["services"][name] = None
            _place(scratch, ("services", name), doc, ("services", base))
            scratch.keys.pop(("services", name), None)
            own = copy.deepcopy(raw)
            holder = Doc(doc.file, {"services": {name: own}}, doc.values, doc.keys)
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


def _apply_profiles(doc: Doc, profiles: set[str]) -> None:
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
        if profiles & set(wanted) or "*" in profiles:
            del raw["profiles"]
        else:
            del services[name]


def _check_top(doc: Doc) -> None:
    if not isinstance(doc.data, dict):
        doc.problems.append(
            doc.problem((), "a compose file must be a mapping with `services:`", None)
        )
        return
    for key in list(doc.data):
        if key in _TOP_KEYS or key.startswith("x-"):
            continue
        path: Path = (key,)
        if key in COMPOSE_UNSUPPORTED or key in ("secrets", "configs", "include", "models"):
            doc.problems.append(
                doc.problem(
                    path,
                    f"`{key}` is a Compose key that the deployer does not support yet",
                    "remove it"
                    if key != "secrets"
                    else "pass secrets as masked CI/CD variables through `environment`",
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


def merge_compose(doc: Doc, environ: Mapping[str, str]) -> None:
    """Replace the manifest's services, volumes and networks by the merge of its compose
    files and its own entries; record the compose project name and the files read."""
    data = doc.data
    files = data.get("compose")
    entries: list[tuple[Path, Any]] = (
        [(("compose",), files)]
        if isinstance(files, str)
        else [(("compose", i), f) for i, f in enumerate(files)]
        if isinstance(files, list)
        else []
    )
    if not entries:
        return  # the schema reports a wrong type or an empty list
    base = os.path.dirname(doc.file)
    merged = Doc(doc.file, {s: {} for s in SECTIONS})
    profiles = {p.strip() for p in environ.get("COMPOSE_PROFILES", "").split(",") if p.strip()}
    name: str | None = None
    first_dir: str | None = None
    for path, entry in entries:
        if not isinstance(entry, str):
            continue
        shown = os.path.normpath(os.path.join(base, entry))
        compose = yamlpos.load_file(shown, shown)
        if compose.problems and compose.data is None:
            for p in compose.problems:
                if p.message == "file not found":
                    doc.problems.append(
                        doc.problem(
                            path,
                            f'compose file "{entry}" not found (looked at {shown})',
                            "fix the path: it is relative to the manifest",
                        )
                    )
                else:
                    doc.problems.append(p)
            continue
        doc.compose_files.append(shown)
        if first_dir is None:
            first_dir = os.path.dirname(os.path.abspath(shown))
        _check_top(compose)
        if isinstance(compose.data, dict):
            _resolve_extends(compose)
            _apply_profiles(compose, profiles)
            if isinstance(compose.data.get("name"), str):
                name = compose.data["name"]
            for section in SECTIONS:
                if isinstance(compose.data.get(section), dict):
                    merge(merged, (section,), compose, (section,))
        doc.problems.extend(compose.problems)
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
        doc.problems.append(
            doc.problem(
                ("compose",),
                "the compose files define no active service"
                + (f" (COMPOSE_PROFILES={','.join(sorted(profiles))})" if profiles else ""),
                "check the files and their `profiles:`",
                key=True,
            )
        )
    if first_dir is not None:
        doc.compose_dotenv = read_dotenv(os.path.join(first_dir, ".env"))
    lookup = {**doc.compose_dotenv, **environ}
    if name is not None and "$" in name:
        try:
            name = interpolate(name, lookup).value
        except InterpolationSyntaxError:
            name = None
    if not name:
        name = lookup.get("COMPOSE_PROJECT_NAME") or os.path.basename(first_dir or "")
    doc.compose_project = project_name(name) or None
