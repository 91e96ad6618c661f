"""Splitting the engine's timestamped log output and merging replicas in time order
(pure: no engine)."""

from __future__ import annotations

from deployer.ops import ReplicaLog, merge, parse_stamped, split_stamped, stamp_of


def log(source: str, raw: str) -> ReplicaLog:
    stamps, texts = split_stamped(raw)
    return ReplicaLog("h", "s", 1, source, stamps, texts)


def test_the_engines_fixed_form_is_cut_in_place() -> None:
    raw = (
        "2026-11-29T16:01:26.100000000Z first line\n"
        "2026-11-29T16:01:26.123456789Z  two spaces kept\r\n"
        "2026-11-29T16:01:27.000000000Z \n"
    )
    assert split_stamped(raw) == (
        [
            "2026-11-29T16:01:26.100000000Z",
            "2026-11-29T16:01:26.123456789Z",
            "2026-11-29T16:01:27.000000000Z",
        ],
        ["first line", " two spaces kept", ""],
    )


def test_other_forms_are_rewritten_to_the_fixed_one_and_sort_as_time() -> None:
    # Trailing zeros dropped (RFC3339Nano): as text ".1Z" would sort after ".12Z".
    raw = "2026-11-29T16:01:26.1Z a\n2026-11-29T16:01:26Z b\nno stamp at all\n"
    stamps, texts = split_stamped(raw)
    assert stamps == ["2026-11-29T16:01:26.100000000Z", "2026-11-29T16:01:26.000000000Z", ""]
    assert texts == ["a", "b", "no stamp at all"]
    ns, _, _ = parse_stamped("2026-11-29T16:01:26.123456789Z x")
    assert stamp_of(ns) == "2026-11-29T16:01:26.123456789Z"


def test_merge_is_time_order_then_container_then_the_engines_order() -> None:
    b = log("bbb", "2026-11-29T16:00:00.000000002Z b1\n2026-11-29T16:00:00.000000002Z b2\n")
    a = log(
        "aaa",
        "2026-11-29T16:00:00.000000001Z a1\n"
        "2026-11-29T16:00:00.000000002Z a2\n"
        "2026-11-29T16:00:00.000000003Z a3\n",
    )
    c = log("ccc", "2026-11-29T16:00:00.1Z c1\n")  # rewritten: after every other

    def render(x: ReplicaLog) -> list[str]:
        return x.texts

    assert merge([b, c, a], render) == ["a1", "a2", "b1", "b2", "a3", "c1"]
    assert merge([], render) == []
