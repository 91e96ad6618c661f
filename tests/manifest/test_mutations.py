"""Property: whatever a valid manifest is mutated into, `deployer validate` exits 0 or 2,
every problem line is located (file:line:column:), and nothing ever raises."""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer.cli import main
from tests.manifest.helpers import CORPUS, ENVIRON

SEEDS = sorted(p for p in (CORPUS / "valid").glob("*.yml") if "env_file" not in p.read_text())
TEXTS = [p.read_text() for p in SEEDS]
DATA = [yaml.safe_load(t) for t in TEXTS]
LOCATED = re.compile(r"^\S+:\d+:\d+: ")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["${X}", "${", "$$", "80:80:80", "1m30s", "latest", "host", "/", "-1"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=8), inner, max_size=3),
    ),
    max_leaves=6,
)
keys = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        [
            "image",
            "ports",
            "deploy",
            "replicas",
            "build",
            "privileged",
            "x-a",
            "depends_on",
            "environment",
            "volumes",
            "networks",
            "healthcheck",
            "test",
            "services",
            "tasks",
        ]
    ),
)


def _containers(node: Any, out: list[Any]) -> list[Any]:
    if isinstance(node, dict | list):
        out.append(node)
        items = node.values() if isinstance(node, dict) else node
        for v in items:
            _containers(v, out)
    return out


@st.composite
def mutated(draw: st.DrawFn) -> str:
    i = draw(st.integers(0, len(SEEDS) - 1))
    kind = draw(st.sampled_from(["data", "data", "text"]))
    if kind == "text":
        text = TEXTS[i]
        for _ in range(draw(st.integers(1, 3))):
            pos = draw(st.integers(0, len(text)))
            cut = draw(st.integers(0, 6))
            junk = draw(st.text(alphabet=" \t\n:-[]{}&*!|>'\"#$%@`,?abc019", max_size=6))
            text = text[:pos] + junk + text[pos + cut :]
        return text
    data = yaml.safe_load(TEXTS[i])  # a fresh copy
    for _ in range(draw(st.integers(1, 4))):
        nodes = _containers(data, [])
        node = draw(st.sampled_from(nodes))
        op = draw(st.sampled_from(["delete", "insert", "swap"]))
        if isinstance(node, dict):
            if op == "insert" or not node:
                node[draw(keys)] = draw(values)
                continue
            key = draw(st.sampled_from(sorted(node, key=str)))
            if op == "delete":
                del node[key]
            else:
                node[key] = draw(values)
        elif isinstance(node, list):
            if op == "insert" or not node:
                node.insert(draw(st.integers(0, len(node))), draw(values))
                continue
            j = draw(st.integers(0, len(node) - 1))
            if op == "delete":
                del node[j]
            else:
                node[j] = draw(values)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@pytest.fixture(autouse=True)
def _ci_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI_ENVIRONMENT_NAME", raising=False)
    for k, v in ENVIRON.items():
        monkeypatch.setenv(k, v)


def _run(text: str) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "deploy.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stderr(err):
            code = main(["validate", "-f", path], out=out)
        return code, out.getvalue(), err.getvalue()


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutated())
def test_any_mutation_exits_0_or_2_with_located_messages(text: str) -> None:
    code, out, err = _run(text)
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, out, err)
    lines = out.splitlines()
    assert lines, "validate printed nothing"
    if code == 2:
        problems = lines[:-1]
        assert problems, out
        for line in problems:
            assert LOCATED.match(line), line
    else:
        assert "valid for" in lines[-1]


def test_seeds_are_valid() -> None:
    assert len(SEEDS) >= 8
    for text in TEXTS:
        assert _run(text)[0] == 0


COMPOSE_DIRS = [Path(__file__).parent / "compose" / n for n in ("voting", "shop")]


@st.composite
def mutated_compose(draw: st.DrawFn) -> tuple[Path, str, str]:
    """A compose-based app with one of its YAML files mutated."""
    d = draw(st.sampled_from(COMPOSE_DIRS))
    files = sorted(p.name for p in d.iterdir() if p.suffix in (".yml", ".yaml"))
    name = draw(st.sampled_from(files))
    return d, name, draw(mutated_text((d / name).read_text()))


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> str:
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            pos = draw(st.integers(0, len(text)))
            cut = draw(st.integers(0, 6))
            junk = draw(st.text(alphabet=" \t\n:-[]{}&*!|>'\"#$%@`,?abc019", max_size=6))
            text = text[:pos] + junk + text[pos + cut :]
        return text
    data = yaml.safe_load(text)
    for _ in range(draw(st.integers(1, 4))):
        nodes = _containers(data, [])
        if not nodes:
            break
        node = draw(st.sampled_from(nodes))
        if isinstance(node, dict):
            if not node or draw(st.booleans()):
                node[draw(keys)] = draw(values)
            else:
                key = draw(st.sampled_from(sorted(node, key=str)))
                node[key] = draw(st.one_of(values, st.just(None)))
        elif isinstance(node, list):
            node.insert(draw(st.integers(0, len(node))), draw(values))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutated_compose())
def test_any_compose_mutation_exits_0_or_2_with_located_messages(
    case: tuple[Path, str, str],
) -> None:
    src, name, text = case
    with tempfile.TemporaryDirectory() as d:
        app = Path(d) / "app"
        shutil.copytree(src, app)
        (app / name).write_text(text, encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        with redirect_stderr(err):
            code = main(["validate", "-f", str(app / "deploy.yml")], out=out)
    assert "Traceback" not in err.getvalue(), err.getvalue()
    assert code in (0, 2), (code, out.getvalue(), err.getvalue())
    lines = out.getvalue().splitlines()
    if code == 2:
        assert lines[:-1]
        for line in lines[:-1]:
            assert LOCATED.match(line), line
