"""YAML with positions: lines and columns per key path, YAML 1.2 scalars, anchors,
duplicate keys, and every YAML error turned into a located problem."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.manifest import yamlpos
from deployer.manifest.yamlpos import Pos, load_file, load_text


@pytest.fixture(autouse=True, params=["libyaml", "python"])
def _loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs with libyaml's parser and with PyYAML's pure-Python one."""
    if request.param == "python":
        monkeypatch.setattr(yamlpos, "_Loader", yamlpos._PyLoader)
    yield


TEXT = """\
app: shop
services:
  web:
    image: a:1
    ports:
      - "80:80"
      - 8080
"""


def test_positions_of_values_and_keys() -> None:
    doc = load_text(TEXT, "deploy.yml")
    assert not doc.problems
    assert doc.pos(("services", "web", "image")) == Pos("deploy.yml", 4, 12)
    assert doc.pos(("services", "web", "image"), key=True) == Pos("deploy.yml", 4, 5)
    assert doc.pos(("services", "web", "ports", 1)) == Pos("deploy.yml", 7, 9)
    # a block mapping points at its key, not its first child
    assert doc.pos(("services", "web")) == Pos("deploy.yml", 3, 3)
    # unknown paths fall back to the nearest ancestor
    assert doc.pos(("services", "web", "ports", 5)) == Pos("deploy.yml", 5, 5)


def test_yaml_12_scalars() -> None:
    """As compose's YAML library reads them (checked against ``docker compose config``)."""
    doc = load_text(
        "a: [yes, no, on, true, False, 80:80, 0o17, 0x1f, 010, 1e3, .5, ~, null, '', 1_0]",
        "f",
    )
    assert doc.data["a"] == [
        "yes",
        "no",
        "on",
        True,
        False,
        "80:80",
        15,
        31,
        8,  # a leading 0 is octal: `mode: 0440` is 288
        1000.0,
        0.5,
        None,
        None,
        "",
        10,
    ]


def test_integers_read_as_compose_reads_them() -> None:
    doc = load_text("a: [-010, +010, 0b11, 0B1, -0x1f, 0_7, 09, 0440, 0o440, '0440', 0x]", "f")
    assert doc.data["a"] == [-8, 8, 3, 1, -31, 7, 9.0, 288, 288, "0440", "0x"]


def test_anchors_aliases_and_merge_keys() -> None:
    doc = load_text("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\nsame: *b\n", "f")
    assert not doc.problems
    assert doc.data["use"] == {"x": 1, "y": 3}
    assert doc.data["same"] == {"x": 1, "y": 2}
    assert doc.pos(("use", "x")).line == 1  # merged values point at where they are written


def test_merge_key_lists_the_first_mapping_wins() -> None:
    """``<<: [*a, *b]``: of the merged mappings the first wins a key both write, the
    mapping's own keys win over all, as YAML and compose's YAML library merge them (PyYAML
    6.0.4's own merge let the later mapping win); a merged mapping's own merges first."""
    doc = load_text(
        "x-a: &a\n  restart: always\n  environment: {A: a}\n  <<: {stop_signal: SIGINT}\n"
        "x-b: &b\n  restart: 'no'\n  environment: {B: b}\n  stop_signal: SIGTERM\n"
        "  init: true\n"
        "s:\n  <<: [*a, *b]\n  init: false\n",
        "f",
    )
    assert not doc.problems
    assert doc.data["s"] == {
        "restart": "always",
        "environment": {"A": "a"},
        "stop_signal": "SIGINT",
        "init": False,
    }
    assert doc.pos(("s", "restart")).line == 2  # where the winning value is written


def test_a_mapping_merged_into_itself_is_reported_not_looped() -> None:
    doc = load_text("a: &a\n  x: 1\n  <<: [*a]\n", "f")
    assert doc.problems


def test_a_second_merge_key_is_a_duplicate_as_compose_reads_it() -> None:
    """Two ``<<`` in one mapping (an older packeton README's ``<<: *restart_policy`` then
    ``<<: *default-volume``): compose refuses the file ("mapping key "<<" already
    defined"); before, the deployer merged both silently."""
    doc = load_text(
        "x-a: &a {restart: always}\nx-b: &b {volumes: [d:/data]}\n"
        "services:\n  s:\n    image: busybox\n    <<: *a\n    <<: *b\n",
        "f",
    )
    (p,) = doc.problems
    assert (p.line, p.path) == (7, 'services.s["<<"]')
    assert "duplicate key" in p.message and "<<: [*first, *second]" in (p.fix or "")


def test_duplicate_keys_are_all_reported() -> None:
    doc = load_text("a: 1\nb: 2\na: 3\nb: 4\n", "f")
    assert [(p.line, p.path) for p in doc.problems] == [(3, "a"), (4, "b")]
    assert "first defined at line 1" in doc.problems[0].message


def test_syntax_error_is_located() -> None:
    doc = load_text("a: 1\nb: [1, 2\nc: 3\n", "f")
    assert doc.data is None
    (p,) = doc.problems
    assert p.line >= 2 and "YAML syntax error" in p.message


def test_several_documents_are_an_error() -> None:
    doc = load_text("a: 1\n---\nb: 2\n", "f")
    assert doc.problems and "single document" in doc.problems[0].message


def test_alias_bombs_are_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    doc = load_text("\n".join(lines), "f")
    assert any("expands to more than" in p.message for p in doc.problems)


def test_non_string_keys_and_bad_merge() -> None:
    doc = load_text("? [a]\n: 1\nm:\n  <<: 5\n", "f")
    messages = " ".join(p.message for p in doc.problems)
    assert "plain string" in messages and "merge" in messages


def test_file_errors(tmp_path: Path) -> None:
    missing = load_file(str(tmp_path / "nope.yml"), "nope.yml")
    assert missing.problems[0].message == "file not found"
    bad = tmp_path / "bad.yml"
    bad.write_bytes(b"app: shop\nx: \xff\xfe\n")
    doc = load_file(str(bad), "bad.yml")
    assert (doc.problems[0].line, doc.problems[0].column) == (2, 4)
    ctrl = tmp_path / "ctrl.yml"
    ctrl.write_bytes(b"app: shop\nx: a\x07b\n")
    doc = load_file(str(ctrl), "ctrl.yml")
    assert doc.problems[0].line == 2
