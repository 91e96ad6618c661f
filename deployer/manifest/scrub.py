"""Problems quote the manifest as written, never an interpolated value.

A value that came from a variable may be a secret (``ports: ["${DATABASE_URL}"]``), and
the checks that find it wrong quote what they checked. Before a problem leaves the loader,
every interpolated value in its message and fix is put back as the manifest writes it
(``"${DATABASE_URL}" is not a port mapping``), a quoted piece of such a value is named
instead of shown, and any variable's value still left in the text is replaced by the
variable's name (a value ending in ``/`` without that ``/``, which a canonical path shows
as the separator after it). The values are judged whatever their length: a quoted value or piece is
recognised by its quotes; a bare value of at least :data:`BARE_MIN` characters anywhere, a
shorter one as a whole word; a bare value shorter than 8 characters that is a word of the
manifest's own vocabulary (``host``) is left: the message's own words are made of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from deployer.manifest.problems import Path, Problem, format_path
from deployer.manifest.schema import ordinary_word

_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_QUOTED = re.compile(r'"([^"]*)"|\'([^\']*)\'|`([^`]*)`')
BARE_MIN = 4  # shorter values are too likely to be ordinary words of the message
# Values that tell nothing where they stand bare, and that messages use as words: a flag's
# `true`, `default`, a path's `../` (no letter or digit). Quoted, they are still judged.
_PLAIN_WORDS = frozenset(
    {"true", "false", "yes", "no", "on", "off", "default", "none", "null", "always", "never"}
)


def _telling(value: str) -> bool:
    """Whether a value standing bare in a message could tell something of a secret: not a
    word of the manifest's own vocabulary too short for GitLab to mask (``host``: put
    back, it rewrote the fix's ``host-network`` as ``${NETWORK_MODE}-network``)."""
    return (
        value.lower() not in _PLAIN_WORDS
        and any(c.isalnum() for c in value)
        and not ordinary_word(value)
    )


def _at(data: Any, path: Path) -> Any:
    node = data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _bare_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for every value where it stands unquoted: anywhere when it is long, as a
    whole word when short (a number alone is left: too likely the message's own); the
    longest first where several start at one place."""
    alts = []
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= BARE_MIN:
            alts.append(re.escape(value))
        elif not value.isdigit():
            alts.append(rf"(?<!\w){re.escape(value)}(?!\w)")
    return re.compile("|".join(alts)) if alts else None


def _path_value(value: str) -> str:
    """A value as it stands in a path a message shows: without its trailing ``/``. A path is
    shown canonical (``${DIR}/x`` with ``DIR=/srv/app/`` reads ``/srv/app/x``), so the
    value's own ``/`` is the separator that follows it, which stays in the text when the
    name is put back: ``${DIR}/x``, not ``${DIR}x``."""
    stripped = value.rstrip("/")
    return stripped if stripped and stripped != value else value


def _segment(key: str) -> str:
    """How a problem's path writes a mapping key: ``.KEY``, or ``["KEY"]``."""
    return format_path(("x", key))[1:]


def _keys(tree: Any) -> set[str]:
    """Every mapping key of ``tree`` (a YAML document's plain data)."""
    out: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            out.update(k for k in node if isinstance(k, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


class Scrubber:
    """Built once per environment from the written tree, the interpolated tree, the paths
    that were interpolated and the variables they could read."""

    def __init__(
        self,
        written: Any,
        data: Any,
        interpolated: Iterable[Path],
        lookup: Mapping[str, str],
        keys: Mapping[str, str] | None = None,
    ) -> None:
        """``keys``: the mapping keys written as list items that were interpolated (the
        interpolated key -> as written)."""
        pairs: dict[str, str] = {}  # interpolated value -> as written
        names: dict[str, str] = {}  # variable value -> ${NAME}
        texts = [(_at(written, path), _text(_at(data, path))) for path in interpolated]
        for raw, value in texts + [(old, new) for new, old in (keys or {}).items()]:
            if not isinstance(raw, str) or not value or value == raw:
                continue  # an empty value reveals nothing (and would match everywhere)
            pairs.setdefault(value, raw)
            for name in _VAR.findall(raw):
                v = lookup.get(name)
                if v:
                    names.setdefault(_path_value(v), "${" + name + "}")
        self.pairs = sorted(pairs.items(), key=lambda kv: -len(kv[0]))
        self.names = sorted(names.items(), key=lambda kv: -len(kv[0]))
        # each value as it is shown: as written where a key's whole value came from
        # variables, else the variable's name
        self.shown = {**dict(self.names), **dict(self.pairs)}
        # what the manifest writes where it interpolates: quoted whole, it is shown as it is
        # (`"${SOCK}:/var/run/docker.sock"` keeps its target, though SOCK's value is that)
        self.written = {raw for _, raw in self.pairs}
        # the manifest's own names (services, volumes, keys): quoted, a message names them
        # (`service "mailer"`), never a secret though a value holds them (`mail`)
        self.names_written = _keys(written) - set(keys or ())  # an item's key is a value
        # a problem's path names such a key as written
        self.segments = [
            (re.compile(re.escape(_segment(new)) + r"(?=$|[.\[])"), _segment(old))
            for new, old in (keys or {}).items()
        ]
        # a bare value that is one of the manifest's names (`app`) is the message's word
        self.bare = _bare_pattern(
            v for v in self.shown if _telling(v) and v not in self.names_written
        )

    def text(self, text: str) -> str:
        if not self.pairs and not self.names:
            return text

        def quoted(m: re.Match[str]) -> str:
            seg = next(g for g in m.groups() if g is not None)
            if seg in self.written or seg in self.names_written:
                return m.group(0)  # the manifest's own text, quoted as written
            for value, raw in self.pairs:
                if seg == value:
                    return f'"{raw}"'
            for value, raw in self.pairs:
                if seg and seg in value and seg not in raw:
                    return f'(a part of "{raw}")'
            for value, name in self.names:
                if seg and seg in value and seg not in name:
                    return f"(a part of {name})"
            return m.group(0)[0] + bare(seg) + m.group(0)[-1]

        def bare(piece: str) -> str:
            if self.bare is None:
                return piece
            return self.bare.sub(lambda m: self.shown[m.group(0)], piece)

        # one pass over the text: what is put back is never read again (the manifest's own
        # `${AIRFLOW_IMAGE_NAME:-apache/airflow:2}` holds `airflow`, another key's value)
        out = []
        at = 0
        for m in _QUOTED.finditer(text):
            out.append(bare(text[at : m.start()]))
            out.append(quoted(m))
            at = m.end()
        out.append(bare(text[at:]))
        return "".join(out)

    def problem(self, p: Problem) -> Problem:
        message = self.text(p.message)
        fix = self.text(p.fix) if p.fix else p.fix
        path = p.path
        for segment, written in self.segments:
            path = segment.sub(lambda _: written, path)  # noqa: B023 (used at once)
        if message == p.message and fix == p.fix and path == p.path:
            return p
        return replace(p, message=message, fix=fix, path=path)

    def problems(self, problems: Iterable[Problem]) -> list[Problem]:
        return [self.problem(p) for p in problems]
