"""JSON Schema validation (draft 2020-12) turned into located, readable problems.

The schema ships inside the package as ``deployer/schemas/deploy-manifest.schema.json``
(the top-level ``schemas/`` directory of the source tree) and is loaded with
``importlib.resources``, so it works from a checkout, an editable install and a wheel.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import re
from typing import Any

from deployer.manifest.problems import Path, Problem
from deployer.manifest.yamlpos import Doc

SCHEMA_FILE = "deploy-manifest.schema.json"

# Keys of the Compose Specification (any level) that the deployer does not support yet:
# refused with a message that says so, never silently ignored.
COMPOSE_UNSUPPORTED = frozenset(
    [
        "models",
        "profiles",
        "provider",
        "extends",
        "rollback_config",
        "endpoint_mode",
        "max_failure_ratio",
        "link_local_ips",
        "include",
        "version",
    ]
)

# Keys of the Compose Specification for Windows containers (the deployer runs Linux ones):
# refused, saying so.
WINDOWS_ONLY = frozenset(["cpu_count", "cpu_percent", "credential_spec", "isolation"])

# Compose keys that need a newer engine than the deployer drives: refused, naming it
# (key: (message, fix)). None today: gw_priority is checked against each host's engine.
NEEDS_ENGINE: dict[str, tuple[str, str]] = {}

_WHY = {
    "version": "remove it (it is obsolete in compose too)",
    "extends": "write the service in full, or use YAML anchors (x-common: &common, <<: *common)",
}


@functools.cache
def schema() -> dict[str, Any]:
    text = importlib.resources.files("deployer.schemas").joinpath(SCHEMA_FILE).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


# GitLab masks no variable shorter than this (a masked variable's value has at least 8
# characters): a shorter value is printed by any job that prints it.
GITLAB_MASK_MIN = 8


# The engine's mode words the schema describes but does not list (network_mode, restart).
MODE_WORDS = ("bridge", "default", "always", "unless-stopped", "on-failure", "shareable")


@functools.cache
def vocabulary() -> frozenset[str]:
    """The words the manifest's language is made of, lower case: each key of the schema
    and each value it names (enums, constants, the ``policy.allow`` entries, the words of
    its patterns, :data:`MODE_WORDS`), whole and in parts (``host-network``: ``host``,
    ``network``). The deployer's messages and fixes are written with them."""
    words: set[str] = set()
    stack: list[Any] = [schema(), {"enum": list(MODE_WORDS)}]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        names = list(node.get("properties") or {})
        names += [v for v in (*node.get("enum", ()), node.get("const")) if isinstance(v, str)]
        if isinstance(node.get("pattern"), str):
            names += re.findall(r"[a-z]+", node["pattern"])
        for name in names:
            words.add(name.lower())
            words.update(p for p in re.split(r"[^a-z0-9]+", name.lower()) if p)
        stack.extend(node.values())
    return frozenset(words)


def ordinary_word(value: str) -> bool:
    """Whether ``value`` is too short for GitLab to mask (:data:`GITLAB_MASK_MIN`) and a
    word of the manifest's own :func:`vocabulary` (``host``, ``none``, ``bridge``):
    masking it, or naming the variable in its place, would rewrite the deployer's own
    words (``add "host-network"``) and hide nothing GitLab hides."""
    return len(value) < GITLAB_MASK_MIN and value in vocabulary()


@functools.cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


@functools.cache
def _sections_validator() -> Any:
    """The schema of a compose file's own sections (services, volumes, networks, configs,
    secrets), as the manifest's schema writes them."""
    import jsonschema

    root = schema()
    names = ("services", "volumes", "networks", "configs", "secrets")
    part = {
        "$defs": root["$defs"],
        "type": "object",
        "properties": {k: root["properties"][k] for k in names},
    }
    return jsonschema.Draft202012Validator(part)


def is_secret(path: Path) -> bool:
    """Whether the value at ``path`` may be a secret (never shown in any message)."""
    if len(path) >= 3 and path[0] == "services" and path[2] in ("environment", "env_file"):
        return True
    hook = len(path) >= 5 and path[0] == "services" and path[2] in ("post_start", "pre_stop")
    if hook and path[4] == "environment":
        return True
    if path and path[0] == "registry":
        return True
    if len(path) >= 4 and path[0] == "notify" and path[3] == "url":  # carries its token
        return True
    return len(path) >= 3 and path[0] == "environments" and path[2] == "variables"


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing (null)",
}


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _expected(types: object) -> str:
    names = [types] if isinstance(types, str) else list(types)  # type: ignore[call-overload]
    words = [_TYPE_NAMES.get(str(t), str(t)) for t in names if t != "null"]
    if len(words) > 1:
        return ", ".join(words[:-1]) + " or " + words[-1]
    return words[0] if words else "nothing"


def did_you_mean(word: str, choices: list[str]) -> str | None:
    starts = [c for c in choices if word and c.lower().startswith(word.lower())]
    if len(starts) == 1:
        return starts[0]
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_key_problem(doc: Doc, path: Path, allowed: list[str]) -> Problem:
    """The message for a key that is not allowed here (unknown, or compose-but-unsupported)."""
    key = str(path[-1])
    where = "here"
    guess = did_you_mean(key, allowed)
    if key in WINDOWS_ONLY and guess != key:
        return doc.problem(
            path,
            f"`{key}` is a Compose key for Windows containers only: the deployer runs "
            "Linux containers, where the engine has no such setting",
            "remove it",
            key=True,
        )
    if key in NEEDS_ENGINE and guess != key:
        message, fix = NEEDS_ENGINE[key]
        return doc.problem(path, message, fix, key=True)
    if key in COMPOSE_UNSUPPORTED and guess != key:
        fix = _WHY.get(key, "remove it")
        return doc.problem(
            path,
            f"`{key}` is a Compose key that the deployer does not support yet",
            fix,
            key=True,
        )
    if guess:
        return doc.problem(path, f"unknown key `{key}`", f"did you mean `{guess}`?", key=True)
    shown = ", ".join(sorted(allowed)) if allowed else "none"
    return doc.problem(path, f"unknown key `{key}` {where}", f"allowed keys: {shown}", key=True)


_INT_TEXT = re.compile(r"^[-+]?[0-9]+$")


def _coerce(value: str, types: list[str]) -> tuple[bool, Any]:
    """A string cast to the type the schema wants, as compose casts every value it reads:
    one that came from interpolation (``replicas: ${REPLICAS}``) or one written quoted
    (``cpu_shares: "512"``, ``read_only: "true"``)."""
    text = value.strip()
    if "integer" in types and _INT_TEXT.match(text):
        return True, int(text)
    if "number" in types:
        try:
            return True, float(text)
        except ValueError:
            pass
    if "boolean" in types and text.lower() in ("true", "false"):
        return True, text.lower() == "true"
    return False, None


def _set(data: Any, path: Path, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def validate(doc: Doc, data: Any, *, sections: bool = False) -> list[Problem]:
    """Validate ``data`` (the interpolated tree); cast strings the schema wants as another
    type in place, as compose does (``_coerce``). ``sections``: ``data`` is one compose
    file's sections on their own, not yet interpolated: a value with a ``$`` in it is
    left to the check of the merged tree, once interpolated."""
    validator = _sections_validator() if sections else _validator()
    errors: list[Any] = []
    for _ in range(3):
        changed = False
        errors = list(validator.iter_errors(data))
        for err in errors:
            path = tuple(err.absolute_path)
            if err.validator == "type" and isinstance(err.instance, str):
                types = (
                    [err.validator_value]
                    if isinstance(err.validator_value, str)
                    else list(err.validator_value)
                )
                ok, value = _coerce(err.instance, types)
                if ok:
                    _set(data, path, value)
                    changed = True
        if not changed:
            break
    problems: list[Problem] = []
    if changed:
        errors = list(validator.iter_errors(data))
    for err in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        if sections and isinstance(err.instance, str) and "$" in err.instance:
            continue
        problems.extend(_translate(doc, err))
    return problems


def _translate(doc: Doc, err: Any) -> list[Problem]:
    path: Path = tuple(err.absolute_path)
    kind = err.validator
    value = err.instance
    sub = err.schema if isinstance(err.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(sub.get("properties", {}))
        patterns = list(sub.get("patternProperties", {}))
        out = []
        for key in value:
            if key in allowed or any(re.search(p, key) for p in patterns):
                continue
            out.append(unknown_key_problem(doc, (*path, key), allowed))
        return out
    if kind == "required" and isinstance(value, dict):
        missing = [k for k in err.validator_value if k not in value]
        return [
            doc.problem(
                path,
                f"missing required key `{k}`",
                _REQUIRED_FIX.get(k, f"add `{k}:`"),
            )
            for k in missing
        ]
    if kind == "type":
        want = _expected(err.validator_value)
        what = sub.get("description")
        if what and path and len(what) < 90:
            want += f" ({what})"
        return [doc.problem(path, f"expected {want}, got {_type_of(value)}")]
    if kind == "enum":
        choices = [str(c) for c in err.validator_value]
        shown = "this value" if is_secret(path) else f'"{value}"'
        guess = did_you_mean(str(value), choices) if not is_secret(path) else None
        fix = f"did you mean `{guess}`?" if guess else "use one of: " + ", ".join(choices)
        return [doc.problem(path, f"{shown} is not allowed here", fix)]
    if kind == "minimum":
        return [doc.problem(path, f"must be at least {err.validator_value}")]
    if kind == "minItems":
        return [doc.problem(path, "must not be empty", "list at least one entry or remove the key")]
    if kind == "minProperties":
        return [doc.problem(path, "must not be empty", "add at least one entry")]
    return [doc.problem(path, "does not match the manifest schema")]  # pragma: no cover


_REQUIRED_FIX = {
    "app": "add `app: <name>` at the top: it names the containers",
    "environments": "add `environments:` with at least one environment and its hosts",
    "services": "add `services:` with at least one service (or `compose: [file]`)",
    "target": "add `target:` (the path or port inside the container)",
    "type": "add `type: volume`, `type: bind` or `type: tmpfs`",
    "condition": "add `condition: service_started` (or service_healthy)",
    "service": "add `service: <name>`: the service whose image the task runs",
    "command": "add `command: [...]`",
}
