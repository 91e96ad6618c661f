"""Interpolation follows compose's grammar; an unset variable without default is an error."""

from __future__ import annotations

import pytest

from deployer.manifest.interpolate import InterpolationSyntaxError, interpolate

ENV = {"SET": "value", "EMPTY": "", "OTHER": "o"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${SET}", "value"),
        ("$SET", "value"),
        ("$SET-suffix", "value-suffix"),
        ("pre${SET}post", "prevaluepost"),
        ("$$", "$"),
        ("$${SET}", "${SET}"),
        ("$$SET", "$SET"),
        ("${UNSET:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${UNSET-default}", "default"),
        ("${SET:-default}", "value"),
        ("${UNSET:-${OTHER}}", "o"),
        ("${UNSET:-a ${OTHER} b}", "a o b"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${SET:?never shown}", "value"),
        ("echo $(date) $1 and $", "echo $(date) $1 and $"),  # compose v2 keeps these
        ("${UNSET:-}", ""),
        # braces in a default, as compose v2 (2.40) counts them: each `{` opens one,
        # the character after it skipped; none closing, the line's last `}` ends it
        ("${SET:-{}}", "value"),
        ("${UNSET:-{}}", "{}"),
        ('${UNSET:-{"k": 1}}', '{"k": 1}'),
        ("${UNSET-{a}b}c", "{a}bc"),
        ("${UNSET:-x}y}", "xy}"),
        ("${UNSET:-a{b}", "a{b"),
        ("${UNSET:-${SET}{x}}", "value{x}"),
        ("${SET:+{x}}", "{x}"),
        ("${UNSET:-a}${SET:-b}}", "avalue}"),
        ("${UNSET:-${SET:-{}}}z", "valuez"),
    ],
)
def test_expands_like_compose(text: str, expected: str) -> None:
    result = interpolate(text, ENV)
    assert result.value == expected
    assert not result.undefined
    assert not result.required


def test_unset_variable_is_reported_once_per_string() -> None:
    result = interpolate("${A}-${A}-$B", {})
    assert result.undefined == ["A", "B"]


def test_default_is_not_evaluated_when_not_needed() -> None:
    # ${MISSING} inside an unused default must not be reported
    assert interpolate("${SET:-${MISSING}}", ENV).undefined == []
    assert interpolate("${UNSET:-${MISSING}}", ENV).undefined == ["MISSING"]


@pytest.mark.parametrize(
    ("text", "var", "message"),
    [
        ("${UNSET:?set it}", "UNSET", "set it"),
        ("${EMPTY:?no empty}", "EMPTY", "no empty"),
        ("${UNSET?}", "UNSET", ""),
    ],
)
def test_required_variable(text: str, var: str, message: str) -> None:
    assert interpolate(text, ENV).required == [(var, message)]


def test_empty_is_fine_for_question_without_colon() -> None:
    assert interpolate("${EMPTY?must be set}", ENV).required == []


@pytest.mark.parametrize(
    "text",
    ["${", "${SET", "${}", "${SET:x}", "${1ABC}", "${SET:-open", "${SET:-{}} and ${UNSET:-x}"],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(InterpolationSyntaxError) as exc:
        interpolate(text, ENV)
    assert "value" not in str(exc.value)  # never echoes values


def test_marks_strings_that_used_a_variable() -> None:
    assert interpolate("${SET}", ENV).used
    assert not interpolate("$$literal", ENV).used
