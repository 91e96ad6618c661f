"""Problems (errors) and warnings found in a manifest, each with its file, line and key path."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from deployer.errors import InvalidInput

Path = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def printable(text: str) -> str:
    """``text`` with control characters (line breaks included) escaped, so one problem is
    always one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def format_path(path: Path) -> str:
    """``("services", "web", "ports", 0)`` -> ``services.web.ports[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            quoted = part.replace("\\", "\\\\").replace('"', '\\"')
            out += f'["{quoted}"]'
    return out


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a manifest (or, with ``severity`` "warning", worth a look)."""

    file: str
    line: int
    column: int
    path: str
    message: str
    fix: str | None = None
    severity: str = "error"

    def render(self) -> str:
        where = f"{printable(self.file)}:{self.line}:{self.column}"
        key = f" {printable(self.path)}:" if self.path else ""
        kind = " warning:" if self.severity == "warning" else ""
        text = f"{where}:{key}{kind} {printable(self.message)}"
        if self.fix:
            text += f" (fix: {printable(self.fix)})"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "fix": self.fix,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class CheckReport:
    """Everything ``deployer validate`` prints: problems (fatal) and warnings."""

    file: str
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    environments: tuple[str, ...] = ()  # the environments checked
    services: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    compose_files: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:
            n = len(self.problems)
            return f"{self.file}: {n} problem{'s' if n != 1 else ''}"
        # a name with a line break (YAML "\N") stays on the summary's one line
        envs = ", ".join(n if n.isprintable() else repr(n) for n in self.environments) or "-"
        n_svc, n_task, n_warn = len(self.services), len(self.tasks), len(self.warnings)
        source = ""
        if self.compose_files:
            source = " from " + " + ".join(os.path.basename(f) for f in self.compose_files)
        text = (
            f"{self.file}: valid for {envs} ({n_svc} service{'s' if n_svc != 1 else ''}"
            f"{source}, {n_task} task{'s' if n_task != 1 else ''}"
        )
        if n_warn:
            text += f", {n_warn} warning{'s' if n_warn != 1 else ''}"
        return text + ")"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "valid": self.ok,
            "environments": list(self.environments),
            "services": list(self.services),
            "tasks": list(self.tasks),
            "compose_files": list(self.compose_files),
            "problems": [p.as_dict() for p in self.problems],
            "warnings": [w.as_dict() for w in self.warnings],
        }


class ManifestError(InvalidInput):
    """The manifest has problems; carries all of them (never only the first)."""

    def __init__(self, file: str, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems = tuple(problems)
        n = len(self.problems)
        head = f"{file}: {n} problem{'s' if n != 1 else ''}"
        body = "\n".join("  " + p.render() for p in self.problems)
        super().__init__(f"{head}\n{body}" if body else head)
