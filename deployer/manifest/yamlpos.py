"""YAML with positions: plain Python data plus the file, line and column of every key path.

Built on PyYAML's SafeLoader node API (``compose``), so nothing but plain data is ever
constructed. Scalars resolve as docker compose's YAML library resolves them (YAML 1.2's core
schema, and integers as that library reads them): only ``true``/``false`` are booleans (not
``yes``/``on``), ``80:80`` is a string, never the sexagesimal number 4880, and ``0440`` is
the octal number 288, as a file mode means it. Anchors, aliases and ``<<`` merge keys
work; duplicate keys, recursive aliases, non-string keys and unusual tags are reported as
problems.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from deployer.manifest import files
from deployer.manifest.problems import Path, Problem, format_path

MAX_NODES = 200_000  # after alias expansion: stops "billion laughs" documents

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class _PyLoader(yaml.SafeLoader):
    """SafeLoader resolving plain scalars with YAML 1.2 core schema rules."""


# libyaml's parser when PyYAML was built with it (about 5x faster), with the same rules.
_Loader: Any = _PyLoader
if getattr(yaml, "__with_libyaml__", False):

    class _CLoader(yaml.CSafeLoader):
        """CSafeLoader resolving plain scalars with YAML 1.2 core schema rules."""

    _Loader = _CLoader

_cls: Any
for _cls in (_PyLoader, _Loader):
    _cls.yaml_implicit_resolvers = {}
    _cls.add_implicit_resolver(
        _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    _cls.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
    _cls.add_implicit_resolver(
        _INT,
        # as compose's YAML library reads integers: underscores dropped, a sign, then
        # 0x/0o/0b, or a leading 0 for octal (`mode: 0440`); `09` is a float there
        re.compile(r"^[-+]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$"),
        list("-+0123456789"),
    )
    _cls.add_implicit_resolver(
        _FLOAT,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )
    _cls.add_implicit_resolver(_MERGE, re.compile(r"^(?:<<)$"), ["<"])


@dataclass(frozen=True)
class Pos:
    file: str
    line: int
    column: int


@dataclass
class Doc:
    """A loaded YAML document: data, positions, and the problems found while loading."""

    file: str
    data: Any = None
    values: dict[Path, Pos] = field(default_factory=dict)  # where each value starts
    keys: dict[Path, Pos] = field(default_factory=dict)  # where each mapping key is
    problems: list[Problem] = field(default_factory=list)
    compose_project: str | None = None  # set when services come from compose files
    compose_files: list[str] = field(default_factory=list)
    compose_dotenv: dict[str, str] = field(default_factory=dict)  # the project's .env
    # an include's env_file, per resource it brought ((section, name) -> variables)
    scoped_env: dict[Path, dict[str, str]] = field(default_factory=dict)
    tags: dict[Path, str] = field(default_factory=dict)  # values tagged !reset / !override
    # mapping keys written as list items (`- KEY=VALUE`, `- NAME`) and turned into keys when
    # files were merged: compose interpolates an item whole, its key part too
    item_keys: set[Path] = field(default_factory=set)
    # list entries a merge appended at another index than their file gives them (an
    # override's `ports[0]` as the merged `ports[1]`): their path as written, for messages
    written: dict[Path, Path] = field(default_factory=dict)

    def shown(self, path: Path) -> Path:
        """``path`` as its file writes it: the index of an entry in its own file's list."""
        p = tuple(path)
        for n in range(len(p), 0, -1):
            if p[:n] in self.written:
                return (*self.written[p[:n]], *p[n:])
        return p

    def pos(self, path: Path, *, key: bool = False) -> Pos:
        """Position of ``path`` (its key if ``key``), else of its nearest known ancestor."""
        p = tuple(path)
        if key and p in self.keys:
            return self.keys[p]
        while True:
            value, where = self.values.get(p), self.keys.get(p)
            if value and where and value.line != where.line:
                return where  # a block mapping or list: point at its key, not its first child
            if value or where:
                return value or where  # type: ignore[return-value]
            if not p:
                return Pos(self.file, 1, 1)
            p = p[:-1]

    def problem(
        self,
        path: Path,
        message: str,
        fix: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> Problem:
        at = self.pos(path, key=key)
        shown = format_path(self.shown(path))
        return Problem(at.file, at.line, at.column, shown, message, fix, severity)


def _mark_pos(file: str, mark: Any) -> Pos:
    if mark is None:
        return Pos(file, 1, 1)
    return Pos(file, int(mark.line) + 1, int(mark.column) + 1)


MERGE_TAGS = ("!reset", "!override")  # compose's merge tags for override files


def _untagged(loader: Any, node: Node) -> Node:
    """The node as if it had no tag (its value then resolves as usual)."""
    if isinstance(node, ScalarNode):
        tag = loader.resolve(ScalarNode, node.value, (not node.style, False))
        return ScalarNode(tag, node.value, node.start_mark, node.end_mark, node.style)
    if isinstance(node, SequenceNode):
        return SequenceNode(_SEQ, node.value, node.start_mark, node.end_mark, node.flow_style)
    if isinstance(node, MappingNode):
        return MappingNode(_MAP, node.value, node.start_mark, node.end_mark, node.flow_style)
    return node  # pragma: no cover - the composer makes only these three kinds


class _Walker:
    def __init__(self, loader: Any, doc: Doc) -> None:
        self.loader = loader
        self.doc = doc
        self.count = 0
        self.too_big = False
        self.stack: set[int] = set()

    def pos(self, node: Node) -> Pos:
        return _mark_pos(self.doc.file, node.start_mark)

    def add(self, node: Node, path: Path, message: str, fix: str | None = None) -> None:
        at = self.pos(node)
        self.doc.problems.append(
            Problem(at.file, at.line, at.column, format_path(path), message, fix)
        )

    def walk(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            if not self.too_big:
                self.too_big = True
                self.add(
                    node,
                    path,
                    f"the document expands to more than {MAX_NODES} values (aliases nested "
                    "too deep)",
                    "use fewer nested aliases",
                )
            return None
        self.doc.values[path] = self.pos(node)
        if node.tag in MERGE_TAGS:
            self.doc.tags[path] = node.tag
            node = _untagged(self.loader, node)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.stack:
            self.add(node, path, "recursive alias: this value contains itself", "remove the alias")
            return None
        self.stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != _SEQ:
                    self.add(node, path, f"unsupported YAML tag {node.tag}", "remove the tag")
                return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
        finally:
            self.stack.discard(id(node))
        return None  # pragma: no cover - the composer makes only these three kinds

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        if node.tag != _MAP:
            self.add(node, path, f"unsupported YAML tag {node.tag}", "remove the tag")
        seen: dict[str, Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode):
                continue  # reported below
            name = str(key_node.value)
            if name in seen:
                first = self.pos(seen[name])
                merge = key_node.tag == _MERGE  # compose refuses a second `<<` too
                self.add(
                    key_node,
                    (*path, name),
                    f'duplicate key "{name}" (first defined at line {first.line})',
                    "merge them in one list: <<: [*first, *second]"
                    if merge
                    else "keep only one of them",
                )
            else:
                seen[name] = key_node
        try:
            flatten_merges(node, set())
        except yaml.MarkedYAMLError as e:
            self.add(node, path, f"invalid merge key `<<`: {e.problem}", "merge only mappings")
            node.value = [(k, v) for k, v in node.value if k.tag != _MERGE]
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.add(key_node, path, "a key must be a plain string, not a list or mapping")
                continue
            name = str(key_node.value)
            sub = (*path, name)
            self.doc.keys[sub] = self.pos(key_node)
            out[name] = self.walk(value_node, sub)
        return out

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        text = str(node.value)
        tag = node.tag
        if tag == _STR:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            self.add(node, path, "!!bool needs true or false")
            return None
        if tag == _INT:
            try:
                return _integer(text)
            except ValueError:
                self.add(node, path, "!!int needs an integer")
                return None
        if tag == _FLOAT:
            low = text.lower()
            if low.endswith(".inf"):
                return -math.inf if low.startswith("-") else math.inf
            if low == ".nan":
                return math.nan
            try:
                return float(text)
            except ValueError:
                self.add(node, path, "!!float needs a number")
                return None
        self.add(node, path, f"unsupported YAML tag {tag}", "remove the tag")
        return text


def flatten_merges(node: MappingNode, active: set[int]) -> None:
    """A mapping's ``<<`` merge keys, as compose's YAML library applies them: the mapping's
    own keys over every merged one, and of merged mappings (``<<: [*a, *b]``) the first over
    the later ones. Not PyYAML's ``flatten_mapping``: 6.0.4 tells keys apart by the identity
    of their strings, so a later mapping's key won wherever the two strings were not one
    object (``restart`` of ``*b`` over ``*a``'s)."""
    if id(node) in active:  # a mapping merged into itself: its aliases are reported
        return
    active.add(id(node))
    own = [(k, v) for k, v in node.value if k.tag != _MERGE]
    taken = {k.value for k, _ in own if isinstance(k, ScalarNode)}
    merged: list[tuple[Node, Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE:
            continue
        if isinstance(value_node, MappingNode):
            sources = [value_node]
        elif isinstance(value_node, SequenceNode):
            sources = value_node.value
        else:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"expected a mapping or list of mappings for merging, but found {value_node.id}",
                value_node.start_mark,
            )
        for sub in sources:
            if not isinstance(sub, MappingNode):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"expected a mapping for merging, but found {sub.id}",
                    sub.start_mark,
                )
            flatten_merges(sub, active)
            for k, v in sub.value:
                name = k.value if isinstance(k, ScalarNode) else None
                if name is None or name not in taken:
                    merged.append((k, v))
                    taken.add(name)
    active.discard(id(node))
    if len(own) != len(node.value):
        node.value = merged + own


def _integer(text: str) -> int:
    """An integer as compose reads one: ``0x1f``, ``0o17``, ``0b11``, ``017`` (octal),
    ``1_000``, each with an optional sign."""
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t[1:] if t[:1] in "+-" else t
    bases = {"0x": 16, "0o": 8, "0b": 2}
    base = bases.get(t[:2].lower())
    if base is not None:
        return sign * int(t[2:], base)
    return sign * int(t, 8 if len(t) > 1 and t.startswith("0") else 10)


def _syntax_problem(file: str, e: yaml.YAMLError, text: str) -> Problem:
    if isinstance(e, yaml.MarkedYAMLError):
        at = _mark_pos(file, e.problem_mark or e.context_mark)
        msg = e.problem or "invalid YAML"
        if e.context:
            where = ""
            if (
                e.context_mark is not None
                and e.problem_mark is not None
                and (e.context_mark.line != e.problem_mark.line)
            ):
                where = f" (started at line {e.context_mark.line + 1})"
            msg = f"{e.context}{where}, {msg}"
        return Problem(
            at.file,
            at.line,
            at.column,
            "",
            f"YAML syntax error: {msg}",
            "check indentation, quoting and colons on this line",
        )
    if isinstance(e, yaml.reader.ReaderError):
        before = text[: e.position]
        line = before.count("\n") + 1
        col = e.position - (before.rfind("\n") + 1) + 1
        return Problem(
            file,
            line,
            col,
            "",
            "the file contains a character YAML does not allow",
            "remove control characters from the file",
        )
    return Problem(file, 1, 1, "", f"YAML error: {e}")  # pragma: no cover


def load_text(text: str, file: str) -> Doc:
    """Parse ``text`` (named ``file`` in messages). Never raises for bad content."""
    doc = Doc(file)
    try:
        loader = _Loader(text)
    except yaml.YAMLError as e:
        doc.problems.append(_syntax_problem(file, e, text))
        return doc
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as e:
            doc.problems.append(_syntax_problem(file, e, text))
            return doc
        except RecursionError:
            doc.problems.append(
                Problem(file, 1, 1, "", "the document is nested too deeply", "flatten it")
            )
            return doc
        if node is None:
            return doc
        walker = _Walker(loader, doc)
        try:
            doc.data = walker.walk(node, ())
        except RecursionError:
            doc.data = None
            doc.problems.append(
                Problem(file, 1, 1, "", "the document is nested too deeply", "flatten it")
            )
    finally:
        loader.dispose()
    return doc


def load_file(path: str, shown: str) -> Doc:
    """Read and parse a file; ``shown`` is how messages name it."""
    try:
        raw = files.read_limited(path, files.MANIFEST_LIMIT)
    except files.FileRefused as e:
        doc = Doc(shown)
        doc.problems.append(
            Problem(
                shown,
                0,
                0,
                "",
                f"the file {e}; it is not read",
                f"point to a regular YAML file of at most {files.MANIFEST_LIMIT // files.MIB} MiB",
            )
        )
        return doc
    except FileNotFoundError:
        doc = Doc(shown)
        doc.problems.append(
            Problem(shown, 0, 0, "", "file not found", "create it, or point to it with -f PATH")
        )
        return doc
    except OSError as e:
        doc = Doc(shown)
        doc.problems.append(Problem(shown, 0, 0, "", f"cannot read the file: {e.strerror}"))
        return doc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        before = raw[: e.start]
        line = before.count(b"\n") + 1
        col = e.start - (before.rfind(b"\n") + 1) + 1
        doc = Doc(shown)
        doc.problems.append(
            Problem(shown, line, col, "", "the file is not valid UTF-8", "save it as UTF-8")
        )
        return doc
    return load_text(text, shown)
