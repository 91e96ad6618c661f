"""The suite runs in parallel workers (scripts/test: pytest-xdist with ``--dist loadgroup``)
and relies on ``xdist_group`` to keep the tests that share state in one worker (GROUPS in
tests/conftest.py). A pytest or pytest-xdist release that stops honouring the groups fails
here, instead of as tests that now and then meet on a shared port."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_group_runs_in_one_worker_and_other_tests_spread() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-p",
            "no:cacheprovider",
            "-v",
            "-m",
            "not integration",  # no test peer: this test is about the scheduling alone
            "tests/test_notify.py",  # in the port-18451 group by their path
            "tests/test_plan.py",  # pure tests, in no group
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = re.findall(r"^\[(gw\d+)\] .*PASSED (\S+)", proc.stdout, re.M)
    grouped = {w for w, test in ran if test.startswith("tests/test_notify.py")}
    others = {w for w, test in ran if test.startswith("tests/test_plan.py")}
    notify = (ROOT / "tests" / "test_notify.py").read_text()
    # none of them is parametrized; one is an integration test
    want = len(re.findall(r"^def test_", notify, re.M)) - notify.count("@pytest.mark.integration")
    in_group = [t for _, t in ran if t.startswith("tests/test_notify.py")]
    assert len(in_group) == want >= 2, proc.stdout
    assert len(grouped) == 1, proc.stdout
    assert others - grouped, proc.stdout  # the other tests did not wait for the group


def test_the_scheduling_test_shares_the_group_of_the_port_its_inner_run_binds(
    request: pytest.FixtureRequest,
) -> None:
    """The inner run above starts test_notify.py's webhook server on its fixed port 18451.
    Beside the suite's own run of test_notify.py in another worker, one of the two binds
    fails ("Address already in use"): that is how this test failed once in a full run."""
    mark = request.node.get_closest_marker("xdist_group")
    assert mark is not None and mark.args == ("port-18451",), mark
