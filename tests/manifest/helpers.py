"""Shared bits of the manifest tests: the corpus and the environment it is checked with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
SECRET_DB = "SENTINEL-db-password-7f3a"
SECRET_REGISTRY = "SENTINEL-registry-password-91c2"

ENVIRON = {
    "CI_COMMIT_SHORT_SHA": "abc1234",
    "DATABASE_URL": f"postgres://shop:{SECRET_DB}@db/shop",
    "REGISTRY_PASSWORD": SECRET_REGISTRY,
}

_INLINE = re.compile(r"#\s*error:\s*(.+?)\s*$")
_HEADER = re.compile(r"^#\s*(expect|env|warnings|message):\s*(.*?)\s*$")


@dataclass(frozen=True)
class Case:
    path: Path
    expected: tuple[tuple[int, str], ...]  # (line, key path); "" for no key path
    env: str | None
    warnings: int | None
    messages: tuple[str, ...] = ()  # `# message: TEXT`: a problem's message contains it


def case(path: Path) -> Case:
    expected: list[tuple[int, str]] = []
    env = None
    warnings = None
    messages: list[str] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            kind, value = m.groups()
            if kind == "expect":
                num, key = value.split(maxsplit=1)
                expected.append((int(num), "" if key == "-" else key))
            elif kind == "message":
                messages.append(value)
            elif kind == "env":
                env = value
            else:
                warnings = int(value)
            continue
        m = _INLINE.search(line)
        if m:
            key = m.group(1)
            expected.append((n, "" if key == "-" else key))
    return Case(path, tuple(expected), env, warnings, tuple(messages))


def cases(kind: str) -> list[Case]:
    return [case(p) for p in sorted((CORPUS / kind).glob("*.yml"))]
