"""80,000 lines (4 services x 2 replicas x 10,000) through `deployer logs --since 1h`:
every line once, each replica's in its own order, all in time order."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from deployer.cli import main
from tests.testenv import TestEnv

SERVICE = """\
  {name}:
    image: {image}
    init: true
    stop_grace_period: 1s
    command:
      - sh
      - -c
      - >-
        i=0; while [ $$i -lt 10000 ]; do echo "{name} line $$i"; i=$$((i+1)); done;
        exec sleep 86400
    deploy: {{replicas: 2}}
"""
LINE = re.compile(r"^\S+ (?P<svc>\w+)\.(?P<n>\d) \| (?P<stamp>\S+) (?P=svc) line (?P<i>\d+)$")


@pytest.mark.integration
def test_eighty_thousand_lines_once_each_in_order(
    app: str, testenv: TestEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("GITLAB_CI", "CI", "CI_ENVIRONMENT_NAME", "DOCKER_HOST"):
        monkeypatch.delenv(var, raising=False)
    names = ["alpha", "bravo", "charlie", "delta"]
    path = tmp_path / "deploy.yml"
    path.write_text(
        f'app: {app}\nenvironments:\n  prod:\n    hosts: ["{testenv.engine_host}"]\n'
        "services:\n"
        + "".join(SERVICE.format(name=n, image=testenv.image_base) for n in names)
        + "rollout:\n  health_timeout: 60s\n  healthy_after: 1s\n  drain: 0s\n"
    )
    base = ["-f", str(path), "--env", "prod"]
    code = main(["deploy", *base, "--report-dir", str(tmp_path)], io.StringIO())
    assert code == 0

    deadline = time.monotonic() + 120
    while True:
        out = io.StringIO()
        assert main(["logs", *base, "--since", "1h"], out) == 0
        lines = out.getvalue().splitlines()
        if len(lines) >= 80_000 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert len(lines) == 80_000
    assert len(set(lines)) == 80_000  # each once
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed)
    last: dict[tuple[str, str], int] = {}
    previous = 0
    from deployer.ops import parse_stamped

    for m in parsed:
        assert m
        key = (m["svc"], m["n"])
        i = int(m["i"])
        assert i == last.get(key, -1) + 1  # a replica's lines in their own order
        last[key] = i
        ns, _, _ = parse_stamped(m["stamp"] + " x")
        assert ns >= previous  # all of them in time order
        previous = ns
    assert set(last.values()) == {9_999} and len(last) == 8
