"""The manifest pipeline: YAML with positions -> environment -> interpolation -> schema ->
model and checks. Every stage reports all its problems; nothing stops at the first."""

from __future__ import annotations

import copy
import fnmatch
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from deployer.manifest import yamlpos
from deployer.manifest.interpolate import InterpolationSyntaxError, interpolate
from deployer.manifest.model import Manifest
from deployer.manifest.problems import CheckReport, ManifestError, Path, Problem, format_path
from deployer.manifest.readers.core import Builder
from deployer.manifest.repofiles import job_files
from deployer.manifest.schema import did_you_mean, validate
from deployer.manifest.scrub import Scrubber
from deployer.manifest.yamlpos import Doc


def read(path: str | os.PathLike[str], environ: Mapping[str, str]) -> Doc:
    """Load the manifest file and the compose files it names (merged into its services)."""
    shown = os.fspath(path)
    doc = yamlpos.load_file(shown, shown)
    if not doc.problems and doc.data is None:
        doc.problems.append(
            Problem(
                shown,
                1,
                1,
                "",
                "the manifest is empty",
                "start with `app:`, `environments:` and `services:`",
            )
        )
    if isinstance(doc.data, dict) and "compose" in doc.data:
        from deployer.manifest.compose import merge_compose

        merge_compose(doc, environ)
    return doc


def is_pattern(name: str) -> bool:
    """An environment key with ``*`` (``review/*``) stands for every name it matches."""
    return "*" in name


def matching_key(names: list[str], env: str) -> str | None:
    """The manifest's key for environment ``env``: its own name, else the first pattern
    that matches it (GitLab's review apps: ``review/*`` for ``review/<slug>``)."""
    if env in names:
        return env
    for name in names:
        if is_pattern(name) and not is_pattern(env) and fnmatch.fnmatchcase(env, name):
            return name
    return None


def environment_slug(env: str) -> str:
    """``${DEPLOYER_ENVIRONMENT_SLUG}``: the name as a DNS label (lowercase letters, digits
    and ``-``, at most 63), for host names and URLs: ``review/feat-x`` -> ``review-feat-x``."""
    slug = re.sub(r"[^a-z0-9]+", "-", env.lower()).strip("-")
    return slug[:63].rstrip("-") or "env"


def builtin_variables(env: str) -> dict[str, str]:
    return {"DEPLOYER_ENVIRONMENT": env, "DEPLOYER_ENVIRONMENT_SLUG": environment_slug(env)}


def _for_environment(doc: Doc, env_name: str) -> Doc:
    """``doc`` with a pattern's entry (``review/*``) standing as ``env_name``'s own, its
    positions included, so every later stage sees an ordinary environment."""
    names = environment_names(doc)
    key = matching_key(names, env_name)
    if key is None or key == env_name:
        return doc
    data = copy.copy(doc.data)
    data["environments"] = {
        (env_name if k == key else k): v for k, v in doc.data["environments"].items()
    }
    old = ("environments", key)
    new = ("environments", env_name)

    def alias(table: dict[Path, yamlpos.Pos]) -> dict[Path, yamlpos.Pos]:
        out = dict(table)
        for path, at in table.items():
            if path[:2] == old:
                out[(*new, *path[2:])] = at
        return out

    return replace(doc, data=data, values=alias(doc.values), keys=alias(doc.keys))


def environment_names(doc: Doc) -> list[str]:
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("environments"), dict):
        return [str(k) for k in data["environments"]]
    return []


def select_environment(
    doc: Doc, env: str | None, environ: Mapping[str, str]
) -> tuple[str | None, Problem | None]:
    names = environment_names(doc)
    if not names:
        return None, None  # the schema reports missing or empty environments
    listed = ", ".join(names)
    source = "--env"
    if env is None and environ.get("CI_ENVIRONMENT_NAME"):
        env, source = environ["CI_ENVIRONMENT_NAME"], "CI_ENVIRONMENT_NAME"
    if env is None:
        if len(names) == 1:
            return names[0], None
        return None, doc.problem(
            ("environments",),
            f"the manifest has several environments ({listed}) and none was chosen",
            "pass --env NAME (in GitLab CI, CI_ENVIRONMENT_NAME chooses it)",
            key=True,
        )
    if matching_key(names, env) is not None:
        return env, None
    guess = did_you_mean(env, names)
    return None, doc.problem(
        ("environments",),
        f'{source} names the environment "{env}", which the manifest does not define '
        f"(it has: {listed})",
        f"did you mean `{guess}`?" if guess else f"use one of: {listed}",
        key=True,
    )


Rename = tuple[Path, str, str]  # a mapping's path, a key as written, as interpolated


def _item_keys(
    doc: Doc, node: dict[str, Any], path: Path, expand: Callable[[Path, str], str]
) -> list[Rename]:
    """Keys written as list items (``- traefik.http.routers.${ROUTER}.rule=...``) are
    interpolated, as compose reads each item whole before files are merged; a key written
    as a mapping key is not. The positions follow the key."""
    items = list(node.items())
    if not any(isinstance(k, str) and "$" in k and (*path, k) in doc.item_keys for k, _ in items):
        return []
    renamed = []
    node.clear()
    for key, value in items:
        sub, new = (*path, key), key
        if isinstance(key, str) and "$" in key and sub in doc.item_keys:
            new = expand(sub, key)
            if new != key:
                renamed.append((path, key, new))
                for table in (doc.values, doc.keys):
                    if sub in table:
                        table[(*path, new)] = table[sub]
        node[new] = value
    return renamed


def _interpolate_tree(  # noqa: C901 (one walk, key rules)
    doc: Doc, data: Any, env_name: str, environ: Mapping[str, str]
) -> tuple[set[Path], list[Problem], dict[str, str], list[Path], list[Rename]]:
    """Interpolate ``data`` in place for ``env_name``; returns the interpolated paths, the
    problems, the lookup (environ over the environment's variables), the paths whose
    value is wrong because of an interpolation problem and the item keys renamed."""
    problems: list[Problem] = []
    broken: list[Path] = []
    undefined: dict[str, list[Path]] = {}
    interpolated: set[Path] = set()

    def expand(path: Path, text: str, lookup: Mapping[str, str]) -> str:
        try:
            result = interpolate(text, lookup)
        except InterpolationSyntaxError as e:
            broken.append(path)
            problems.append(
                doc.problem(
                    path,
                    f"invalid interpolation: {e}",
                    "see ${VAR}, ${VAR:-default}, ${VAR:?message}",
                )
            )
            return text
        for var in result.undefined:
            undefined.setdefault(var, []).append(path)
            broken.append(path)
        for var, message in result.required:
            broken.append(path)
            detail = f": {message}" if message else ""
            problems.append(
                doc.problem(
                    path,
                    f"required variable {var} is not set{detail}",
                    f"set {var} as a CI/CD variable or in environments.{env_name}.variables",
                )
            )
        if result.used:
            interpolated.add(path)
        return result.value

    def walk(node: Any, path: Path, lookup: Mapping[str, str]) -> Any:
        if isinstance(node, str):
            return expand(path, node, lookup)
        if isinstance(node, list):
            for i, item in enumerate(node):
                node[i] = walk(item, (*path, i), lookup)
        elif isinstance(node, dict):
            if doc.item_keys:
                renamed.extend(_item_keys(doc, node, path, lambda p, t: expand(p, t, lookup)))
            for key in list(node):
                sub = (*path, key)
                if not path and key.startswith("x-"):
                    continue  # extension fields: content is used (and checked) where merged
                if len(sub) == 2 and sub[0] == "environments" and key != env_name:
                    continue
                if len(sub) == 3 and sub[:2] == ("environments", env_name) and key == "variables":
                    continue
                scoped = doc.scoped_env.get(sub) if len(sub) == 2 else None
                node[key] = walk(node[key], sub, {**scoped, **lookup} if scoped else lookup)
        return node

    renamed: list[Rename] = []
    variables: dict[str, str] = {}
    env_raw = data["environments"][env_name] if isinstance(data, dict) else None
    if isinstance(env_raw, dict) and isinstance(env_raw.get("variables"), dict):
        raw_vars = env_raw["variables"]
        for k, raw_v in raw_vars.items():
            v = raw_v
            if isinstance(v, str):
                v = expand(
                    ("environments", env_name, "variables", k),
                    v,
                    {**environ, **builtin_variables(env_name)},
                )
                raw_vars[k] = v
            if v is None:
                continue
            variables[k] = (
                v
                if isinstance(v, str)
                else (("true" if v else "false") if isinstance(v, bool) else str(v))
            )
    # precedence, as compose: CI/process variables > the environment's `variables` >
    # the compose project's .env file
    # ${DEPLOYER_ENVIRONMENT} and ${DEPLOYER_ENVIRONMENT_SLUG}: the deployer's own.
    # ${PWD} unset reads the working directory, as compose does (a shell always sets it).
    # ${COMPOSE_PROJECT_NAME} unset is the project's name, as compose fills it in
    project = {"COMPOSE_PROJECT_NAME": doc.compose_project} if doc.compose_project else {}
    lookup = {
        "PWD": os.getcwd(),
        **project,
        **doc.compose_dotenv,
        **variables,
        **environ,
        **builtin_variables(env_name),
    }
    walk(data, (), lookup)
    # the include env files' values too, below all: what the scrubber may name
    lookup = {k: v for scoped in doc.scoped_env.values() for k, v in scoped.items()} | lookup
    for var, paths in undefined.items():
        places = []
        for p in dict.fromkeys(paths):
            at = doc.pos(p)
            places.append(f"{format_path(p)} (line {at.line})")
        problems.append(
            doc.problem(
                paths[0],
                f"variable {var} is not set; it is used in " + ", ".join(places),
                f"set {var} as a CI/CD variable (or export it), add it to "
                f"environments.{env_name}.variables, or give a default: ${{{var}:-value}}",
            )
        )
    return interpolated, problems, lookup, broken, renamed


def _written(written: Any, renamed: list[Rename]) -> Any:
    """The tree as written, its item keys renamed as they were interpolated: each path of
    the interpolated tree leads to the text it was interpolated from."""
    if not renamed:
        return written
    out = copy.deepcopy(written)
    for path, old, new in sorted(renamed, key=lambda r: len(r[0])):
        node = out
        for part in path:
            node = node[part]
        node[new] = node.pop(old)
    return out


def _check_env(
    doc: Doc, env_name: str, environ: Mapping[str, str]
) -> tuple[list[Problem], list[Problem], Manifest | None]:
    doc = _for_environment(doc, env_name)
    data = copy.deepcopy(doc.data)
    interpolated, problems, lookup, broken, renamed = _interpolate_tree(
        doc, data, env_name, environ
    )
    schema_problems = validate(doc, data)
    located = [_path_of(p, doc) for p in schema_problems + doc.problems]
    skip = [s for s in located if s is not None] + broken
    builder = Builder(doc=doc, lookup=lookup, skip=skip, job_files=job_files(environ))
    manifest = builder.manifest(data, env_name, doc.file)
    problems += schema_problems + builder.problems
    if manifest is not None and doc.compose_project:
        manifest = replace(manifest, compose_project=doc.compose_project)
    # quote the manifest as written: an interpolated value may be a secret
    keys = {new: old for _, old, new in renamed}
    scrubber = Scrubber(_written(doc.data, renamed), data, interpolated, lookup, keys)
    if manifest is not None and manifest.warnings:
        warnings = tuple(replace(w, message=scrubber.text(w.message)) for w in manifest.warnings)
        manifest = replace(manifest, warnings=warnings)
    return scrubber.problems(problems), scrubber.problems(builder.warning_problems), manifest


def _path_of(problem: Problem, doc: Doc) -> Path | None:
    """The key path of a schema problem, recovered from the positions table."""
    for table in (doc.values, doc.keys):
        for path in table:
            if problem.path in (format_path(path), format_path(doc.shown(path))):
                return path
    return None if problem.path else ()


def _finish(problems: list[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line, p.column)))


def load_manifest(
    path: str | os.PathLike[str], env: str | None, environ: Mapping[str, str]
) -> Manifest:
    doc = read(path, environ)
    if doc.problems and doc.data is None:
        raise ManifestError(doc.file, _finish(doc.problems))
    env_name, problem = select_environment(doc, env, environ)
    problems = list(doc.problems)
    if problem is not None:
        problems.append(problem)
    manifest = None
    if env_name is not None:
        found, _, manifest = _check_env(doc, env_name, environ)
        problems += found
    elif not environment_names(doc):
        data = copy.deepcopy(doc.data)
        problems += validate(doc, data)
    if problems or manifest is None:
        if not problems:  # pragma: no cover - a model is only missing when a problem says why
            problems.append(Problem(doc.file, 1, 1, "", "the manifest is not valid"))
        raise ManifestError(doc.file, _finish(problems))
    return manifest


def check_manifest(
    path: str | os.PathLike[str], env: str | None, environ: Mapping[str, str]
) -> CheckReport:
    """Every problem and warning of the manifest; never raises for bad content.

    With no environment chosen (no ``env``, no CI_ENVIRONMENT_NAME) and several defined,
    every environment is checked.
    """
    doc = read(path, environ)
    compose_files = tuple(doc.compose_files)
    if doc.data is None:
        return CheckReport(doc.file, _finish(doc.problems), compose_files=compose_files)
    names = environment_names(doc)
    problems = list(doc.problems)
    warnings: list[Problem] = []
    checked: list[str] = []
    manifests: list[Manifest] = []
    if env is not None or environ.get("CI_ENVIRONMENT_NAME") or len(names) == 1:
        env_name, problem = select_environment(doc, env, environ)
        if problem is not None:
            problems.append(problem)
        targets = [env_name] if env_name else []
    else:
        # A pattern is checked as one name it matches (review/* as review/example).
        targets = [n.replace("*", "example") if is_pattern(n) else n for n in names]
    for name in targets:
        found, warned, manifest = _check_env(doc, name, environ)
        problems += found
        warnings += warned
        checked.append(name)
        if manifest is not None:
            manifests.append(manifest)
    if not targets:
        problems += validate(doc, copy.deepcopy(doc.data))
    services = manifests[0].service_names if manifests else ()
    tasks = tuple(t.name for t in manifests[0].tasks) if manifests else ()
    return CheckReport(
        file=doc.file,
        problems=_finish(problems),
        warnings=_finish(warnings),
        environments=tuple(checked),
        services=services,
        tasks=tasks,
        compose_files=compose_files,
    )
