"""Relative bind mounts, compose ``configs:``/``secrets:`` and ``build:`` turned into the
model: what the Builder calls for them (kept apart so the Builder stays readable).

Configuration or data: a relative path that the checkout does not have, or a directory
that holds nothing but placeholders (``.gitkeep``, ``.keep``, ``.gitignore``), cannot be
configuration: it is data, a named volume created empty on each host (as the engine would
create the missing directory for docker compose), kept across deploys and rollbacks. So is
a directory listed in ``files: {data: [...]}`` (or the compose file's
``x-deployer-files: {data: [...]}``). Anything else the checkout has (a file, or a directory
with files) is configuration: shipped from the checkout and mounted read-only; a directory
compose mounts writable gets a warning that it is read-only on the hosts (``files: {config:
[...]}`` says it is meant so, and silences it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployer.manifest import pack as F
from deployer.manifest import parse
from deployer.manifest.model import Build, FileKind, FileMount, Mount, TopVolume
from deployer.manifest.problems import Path

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder

DEFAULT_MODE = 0o444
_CONFIG_PLACES = ("/etc/", "/docker-entrypoint-initdb.d")
# What a repository keeps in a directory only so that git keeps the (empty) directory.
PLACEHOLDERS = frozenset({".gitkeep", ".keep", ".gitignore", ".placeholder"})
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def is_relative_source(source: str) -> bool:
    return source == "." or source.startswith(("./", "../")) or source == ".."


def is_home(source: str) -> bool:
    """``~/x``: the home directory of whoever runs compose, on no deploy host."""
    return source == "~" or source.startswith("~/")


def is_local_source(source: str) -> bool:
    """A bind source on the machine that runs compose: the checkout, or the home there."""
    return is_relative_source(source) or is_home(source)


def data_volume_name(rel: str) -> str:
    """The named volume of a data directory: ``./data/db`` -> ``data_db``."""
    slug = re.sub(r"[^a-zA-Z0-9_.-]+", "_", rel.removeprefix("./")).strip("_.-")
    return slug or "data"


def is_data(full: str) -> bool:
    """A path the checkout does not have, or a directory with only placeholders in it: it
    cannot be configuration (there is nothing to ship), so it is data."""
    if not os.path.lexists(full):
        return True
    if not os.path.isdir(full) or os.path.islink(full):
        return False
    try:
        return set(os.listdir(full)) <= PLACEHOLDERS
    except OSError:
        return False


def checkout_root(base: str, manifest_dir: str, lookup: Mapping[str, str]) -> str:
    """The top of the checkout the relative sources must stay in: the CI job's project
    directory (``CI_PROJECT_DIR``) when the files are in it, else the nearest directory
    above the manifest holding ``.git``, else the directory both the manifest and the
    first compose file are in."""
    top = repository_top(base, manifest_dir, lookup)
    if top is not None:
        return top
    return os.path.commonpath([os.path.realpath(base), os.path.realpath(manifest_dir)])


def repository_top(base: str, manifest_dir: str, lookup: Mapping[str, str]) -> str | None:
    """The CI job's project directory (``CI_PROJECT_DIR``) when ``base`` is in it, else
    the nearest directory above the manifest holding ``.git`` that ``base`` is in; None
    outside any repository."""
    base, manifest_dir = os.path.realpath(base), os.path.realpath(manifest_dir)
    project = lookup.get("CI_PROJECT_DIR")
    if project and inside(base, os.path.realpath(project)):
        return os.path.realpath(project)
    d = manifest_dir
    while True:
        if os.path.lexists(os.path.join(d, ".git")) and inside(base, d):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def job_files(environ: Mapping[str, str]) -> frozenset[str]:
    """The regular files the job's own variables name (real paths): a File-type CI/CD
    variable's value is the path of its file."""
    out = set()
    for value in environ.values():
        if value.startswith("/") and len(value) < 4096 and "\0" not in value:
            with contextlib.suppress(OSError):
                if os.path.isfile(value):
                    out.add(os.path.realpath(value))
    return frozenset(out)


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def config_place(target: str) -> bool:
    t = target.rstrip("/") + "/"
    if any(t.startswith(p) or t.rstrip("/") == p.rstrip("/") for p in _CONFIG_PLACES):
        return True
    return any("conf" in part for part in target.split("/"))


@dataclass
class RepoFiles:
    """Per manifest: where relative paths start, the `files:` lists, the top-level
    configs and secrets, and the data volumes made from `files.data`."""

    base: str  # the project directory (of the first compose file, else of the manifest)
    root: str = ""  # the checkout: a relative source that exists must resolve inside it
    data_dirs: dict[str, Path] = field(default_factory=dict)  # normalised abs path -> where
    config_dirs: set[str] = field(default_factory=set)
    configs: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    data_volumes: dict[str, TopVolume] = field(default_factory=dict)
    used_data: set[str] = field(default_factory=set)
    data_owner: dict[str, str] = field(default_factory=dict)  # volume -> data directory

    @classmethod
    def read(cls, b: Builder, data: Mapping[str, Any]) -> RepoFiles:
        doc = b.doc
        first = doc.compose_files[0] if doc.compose_files else doc.file
        base = os.path.dirname(os.path.abspath(first))
        manifest_dir = os.path.dirname(os.path.abspath(doc.file))
        out = cls(base=base, root=checkout_root(base, manifest_dir, b.lookup))
        spec = data.get("files")
        if isinstance(spec, dict):
            for key in ("data", "config"):
                items = spec.get(key)
                for i, item in enumerate(items if isinstance(items, list) else []):
                    if not isinstance(item, str):
                        continue
                    if not is_relative_source(item):
                        b.err(
                            ("files", key, i),
                            f'"{item}" is not a relative path',
                            "write it as in the compose file, e.g. ./data",
                        )
                        continue
                    full = out.abs(item)
                    if key == "data":
                        out.data_dirs[full] = ("files", key, i)
                    else:
                        out.config_dirs.add(full)
        for key in ("configs", "secrets"):
            raw = data.get(key)
            if isinstance(raw, dict):
                getattr(out, key).update(raw)
        return out

    def abs(self, rel: str) -> str:
        return os.path.normpath(os.path.join(self.base, rel))

    def escapes(self, b: Builder, p: Path, full: str, shown: str, *, key: str = "bind") -> bool:
        """Refuse (True) a relative source that exists outside the checkout: written with
        ``../`` past its top, or a symlink of the repository that points out of it (to a
        key of the CI runner, or ``/proc/self/environ``, say). Only files of the repository
        are shipped to hosts, or read into a container's environment (``key``: "bind",
        "file" of a config or secret, "env_file")."""
        if not self.root or not os.path.lexists(full):
            return False
        real = os.path.realpath(full)
        if inside(real, self.root):
            return False
        b.err(
            p,
            f'"{shown}" is outside the repository checkout ({real}): only files of the '
            "repository are shipped to the hosts",
            "commit the file into the repository"
            + (
                ", or bind an absolute path of the deploy host"
                if key == "bind"
                else "; for a file of the CI job (a File-type variable), write its "
                f"absolute path, e.g. {key}: ${{MY_FILE}}"
            ),
        )
        return True

    def job_file(self, b: Builder, p: Path, full: str, shown: str, *, key: str) -> bool:
        """Refuse (True) an absolute path of the CI job's machine outside the checkout that
        no variable of the job names: only the repository's files and the files of
        File-type CI/CD variables (a variable holding the file's path) are read into what
        is deployed. ``/proc/self/environ`` would put the deploy job's own variables (its
        token, the masked ones) into a container's environment, a ``~/.docker/config.json``
        its registry logins; a directory (``${HOME}``) is never a File-type variable's."""
        real = os.path.realpath(full)
        if not (os.path.isfile(real) or os.path.isdir(real)):
            return False  # missing, or a device or FIFO: refused where it is read
        if (self.root and inside(real, self.root)) or real in b.job_files:
            return False
        b.err(
            p,
            f'"{shown}" is a file of the CI job\'s machine outside the repository checkout '
            "that no variable of the job names: only files of the repository and of "
            "File-type CI/CD variables are read into what is deployed",
            "commit the file into the repository, or give it as a File-type CI/CD variable "
            f"and write the variable, e.g. {key}: ${{MY_FILE}}",
        )
        return True

    def rel(self, full: str) -> str:
        r = os.path.relpath(full, self.base)
        return r if r.startswith("..") else "./" + r if r != "." else "."

    # -- relative bind mounts -------------------------------------------------------------
    def bind(
        self, b: Builder, p: Path, source: str, target: str, read_only: bool
    ) -> Mount | FileMount | None:
        if is_home(source):  # not in the checkout, and no host has that home: data
            return self.data(b, p, source.rstrip("/") or "~", source, target, read_only)
        full = self.abs(source)
        shown = self.rel(full)
        if full in self.data_dirs:
            if os.path.isfile(full):
                b.err(p, f'"{shown}" is a file; `files.data` lists directories')
                return None
            return self.data(b, p, shown, full, target, read_only)
        if full not in self.config_dirs and is_data(full):
            if read_only:
                b.warn(
                    p,
                    f'"{shown}" is not in the checkout (or holds nothing): it is data, an empty '
                    f"directory on each host, and mounted read-only at {target}",
                    "commit the file if it is configuration; else mount it writable, or use a "
                    "named volume",
                )
            return self.data(b, p, shown, full, target, read_only)
        if self.escapes(b, p, full, shown):  # what is shipped is read: only the checkout's
            return None
        directory = os.path.isdir(full)
        if directory and not (read_only or full in self.config_dirs or config_place(target)):
            b.warn(
                p,
                f'"{shown}" is a directory of the checkout mounted writable at {target}: it is '
                "shipped as configuration and mounted read-only on the hosts",
                f"if the container writes there, list it in `files: {{data: [{shown}]}}` (a "
                f"volume created empty); `files: {{config: [{shown}]}}` says read-only is meant",
            )
        try:
            archive = F.pack_path(full)
        except F.PackError as e:
            b.err(p, f'"{shown}" cannot be shipped: {e}')
            return None
        return FileMount(
            kind="file",
            name=shown,
            target=target,
            digest=F.digest(archive),
            directory=directory,
            source=full,
        )

    def data(
        self, b: Builder, p: Path, shown: str, full: str, target: str, read_only: bool
    ) -> Mount | None:
        """A data directory: a named volume of the app, created empty on each host."""
        name = self.data_name(b, shown, full)
        if name is None:
            b.err(
                p,
                f'"{shown}" and another data directory would share one volume',
                "rename one of the directories",
            )
            return None
        self.used_data.add(full)
        self.data_volumes[name] = TopVolume(name=name, data_dir=shown)
        b.volumes_declared.add(name)
        return Mount(type="volume", source=name, target=target, read_only=read_only)

    def data_name(self, b: Builder, shown: str, full: str) -> str | None:
        """The volume of a data directory: its path as a volume name (``./data/db`` ->
        ``data_db``); a volume the files declare under that name, or another directory
        with the same name, gets the path's hash added."""
        name = data_volume_name(shown)
        for candidate in (name, f"{name}_{hashlib.sha256(shown.encode()).hexdigest()[:8]}"):
            owner = self.data_owner.setdefault(candidate, full)
            declared = candidate in b.volumes_declared and candidate not in self.data_volumes
            if owner == full and not declared:
                return candidate
        return None

    def short_bind(self, b: Builder, p: Path, text: str) -> Mount | FileMount | None:
        source, _, rest = text.partition(":")
        try:
            parsed = parse.volume_short("/relative:" + rest)  # target and options
        except ValueError as e:
            b.err(p, str(e).replace('"/relative:', f'"{source}:'))
            return None
        return self.bind(b, p, source, parsed.target, parsed.read_only)

    # -- configs and secrets --------------------------------------------------------------
    def refs(self, b: Builder, path: Path, kind: FileKind, raw: Any) -> list[FileMount]:
        out: list[FileMount] = []
        table = self.configs if kind == "config" else self.secrets
        top = "configs" if kind == "config" else "secrets"
        for i, item in enumerate(raw if isinstance(raw, list) else []):
            p = (*path, i)
            spec: dict[str, Any] = item if isinstance(item, dict) else {"source": item}
            name = spec.get("source")
            if not isinstance(name, str):
                continue
            if name not in table:
                b.err(
                    p,
                    f'{kind} "{name}" is not declared in the top-level `{top}:`',
                    f"add `{top}: {{{name}: {{file: ./{name}}}}}` at the top level",
                )
                continue
            target = spec.get("target")
            if not isinstance(target, str) or not target:
                target = f"/run/secrets/{name}" if kind == "secret" else f"/{name}"
            elif not target.startswith("/"):
                target = f"/run/secrets/{target}" if kind == "secret" else "/" + target
            target = posixpath.normpath(target)
            mode = _mode(b, (*p, "mode"), spec.get("mode"))
            uid = _id(b, (*p, "uid"), spec.get("uid"))
            gid = _id(b, (*p, "gid"), spec.get("gid"))
            if mode is None or uid is None or gid is None:
                continue
            fm = self.define(b, (top, name), kind, name, target, mode, uid, gid)
            if fm is not None:
                out.append(fm)
        return out

    def define(
        self,
        b: Builder,
        where: Path,
        kind: FileKind,
        name: str,
        target: str,
        mode: int,
        uid: int,
        gid: int,
    ) -> FileMount | None:
        table = self.configs if kind == "config" else self.secrets
        spec = table.get(name)
        if not isinstance(spec, dict):
            b.err(where, f"{kind} `{name}` needs `file:`, `content:` or `environment:`")
            return None
        if spec.get("external") is True:
            b.err(
                (*where, "external"),
                f"an external {kind} is not supported in container mode (the deployer ships "
                "the content itself)",
                "use `file:` or `environment:`",
            )
            return None
        common = {
            "kind": kind,
            "name": name,
            "target": target,
            "mode": mode,
            "uid": uid,
            "gid": gid,
        }
        if isinstance(spec.get("file"), str):
            full = self.abs(spec["file"])
            written_relative = not spec["file"].startswith("/")
            shown = spec["file"]
            if written_relative and self.escapes(b, (*where, "file"), full, shown, key="file"):
                return None
            if not written_relative and self.job_file(b, (*where, "file"), full, shown, key="file"):
                return None
            try:
                if os.path.isdir(full):
                    if kind == "secret":
                        raise F.PackError("it is a directory; a secret is one file")
                    archive = F.pack_path(full, None, uid, gid)
                else:
                    archive = F.pack_path(full, mode, uid, gid)
            except F.PackError as e:
                b.err((*where, "file"), f'{kind} `{name}`: "{spec["file"]}" cannot be read: {e}')
                return None
            return FileMount(
                **common,  # type: ignore[arg-type]
                digest=F.digest(archive),
                directory=os.path.isdir(full),
                source=full,
            )
        content: str | None = None
        env: str | None = None
        if isinstance(spec.get("content"), str):
            if kind == "secret":
                b.err(
                    (*where, "content"),
                    "a secret cannot be written in the file",
                    "use `environment:` or `file:`",
                )
                return None
            content = spec["content"]
        elif isinstance(spec.get("environment"), str):
            env = spec["environment"]
            content = b.lookup.get(env)
            if content is None:
                b.err(
                    (*where, "environment"),
                    f"{kind} `{name}` comes from the variable {env}, which is not set",
                    f"set {env} as a CI/CD variable (masked for a secret)",
                )
                return None
        else:
            b.err(where, f"{kind} `{name}` needs `file:`, `content:` or `environment:`")
            return None
        archive = F.pack_bytes(content.encode(), mode, uid, gid)
        return FileMount(**common, digest=F.digest(archive), env=env, content=content)  # type: ignore[arg-type]


def _mode(b: Builder, p: Path, raw: Any) -> int | None:
    if raw is None:
        return DEFAULT_MODE
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw  # `mode: 0440` is read as the octal number it is, as compose reads it
    elif isinstance(raw, str) and re.fullmatch(r"0?[0-7]{3,4}", raw.strip()):
        value = int(raw.strip(), 8)
    else:
        b.err(p, f'"{raw}" is not a file mode', 'write it in octal, e.g. 0440 or "0440"')
        return None
    if not 0 <= value <= 0o7777:
        b.err(p, f"{raw} is not a file mode", "e.g. 0440")
        return None
    return value


def _id(b: Builder, p: Path, raw: Any) -> int | None:
    if raw is None:
        return 0
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    b.err(p, f'"{raw}" is not a numeric user or group id', 'e.g. "1000"')
    return None


# The compose build keys `deployer build` honours (cache_from is a hint it may leave out);
# the engine's classic build API has no counterpart for the others.
BUILT_HERE = frozenset({"context", "dockerfile", "args", "target", "labels", "cache_from"})


def build_section(
    b: Builder, path: Path, name: str, raw: dict[str, Any], base: str
) -> tuple[Build | None, str | None]:
    """The service's `build:` and the image to deploy (``image:``, else the convention)."""
    spec = raw.get("build")
    if isinstance(spec, str):
        spec = {"context": spec}
    if not isinstance(spec, dict):
        return None, None
    context = spec.get("context", ".")
    context = os.path.normpath(os.path.join(base, context)) if isinstance(context, str) else base
    image = raw.get("image")
    defaulted = not isinstance(image, str)
    if defaulted:
        missing = [v for v in ("CI_REGISTRY_IMAGE", "CI_COMMIT_SHA") if not b.lookup.get(v)]
        if missing:
            b.err(
                (*path, "build"),
                f"service `{name}` has `build:` and no `image:`, so it deploys "
                f"$CI_REGISTRY_IMAGE/{name}:$CI_COMMIT_SHA; "
                + " and ".join(missing)
                + (" is" if len(missing) == 1 else " are")
                + " not set",
                "set " + " and ".join(missing) + " (GitLab sets both in every pipeline job), "
                "or add `image:` to the service",
                key=True,
            )
            return None, None
        registry_image = b.lookup["CI_REGISTRY_IMAGE"].rstrip("/")
        image = f"{registry_image}/{name.lower()}:{b.lookup['CI_COMMIT_SHA']}"
    build = Build(
        context=context,
        dockerfile=spec.get("dockerfile") if isinstance(spec.get("dockerfile"), str) else None,
        args=b.pairs((*path, "build", "args"), spec.get("args")),
        target=spec.get("target") if isinstance(spec.get("target"), str) else None,
        labels=b.pairs((*path, "build", "labels"), spec.get("labels")),
        image_defaulted=defaulted,
        not_built_here=tuple(k for k in spec if k not in BUILT_HERE and not k.startswith("x-")),
    )
    return build, image if isinstance(image, str) else None
