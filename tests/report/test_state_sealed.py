"""The report's recorded state holds no fast hash of a secret value.

``deploy-report.json`` is a job artifact: more people read it than the hosts' labels (on
a public project, anyone). Its state section records a hash per configuration key for the
merge request plan. The hash of a service's environment, or of a compose secret's record,
is a function of the secret values and of what the repository shows: with a plain
SHA-256 there, a guess of a password was checked offline at billions a second. Those
parts are sealed (scrypt, salted with where they belong); the merge request plan still
tells a changed value from an unchanged one.
"""

from __future__ import annotations

import json
from pathlib import Path

from deployer import baseline
from deployer.manifest import load_manifest
from deployer.manifest.model import Manifest
from deployer.report.data import state_data
from deployer.result import DeployResult, Outcome

MANIFEST = """\
app: shop
environments:
  production: {}
services:
  web:
    image: registry.example.com/shop/web:1
    command: ["serve", "--port", "8080"]
    environment:
      LOG_LEVEL: info
      DB_PASSWORD: ${DB_PASSWORD}
    secrets: [signing_key]
secrets:
  signing_key: {environment: SIGNING_KEY}
"""


def _load(tmp_path: Path, password: str, key: str = "signing-key-1") -> Manifest:
    f = tmp_path / "deploy.yml"
    f.write_text(MANIFEST)
    return load_manifest(f, "production", {"DB_PASSWORD": password, "SIGNING_KEY": key})


def _report(m: Manifest) -> dict[str, object]:
    result = DeployResult(app=m.app, environment=m.environment.name, outcome=Outcome.DEPLOYED)
    return {"state": json.loads(json.dumps(state_data(m, result)))}


def test_no_part_a_guess_of_a_secret_can_be_checked_against_quickly(tmp_path: Path) -> None:
    m = _load(tmp_path, "hunter22")
    web = m.service("web")
    fast = web.config_parts()  # what a guesser computes for a candidate password
    secret_keys = ["environment", *(k for k in fast if "signing_key" in k)]
    assert len(secret_keys) == 2, fast  # the environment's, and the secret's record
    text = json.dumps(_report(m))
    for key in secret_keys:
        assert fast[key] not in text, f"the fast hash of {key} is in the report"
    assert web.config_hash() not in text  # a hash of the parts, the fast one included
    recorded = json.loads(text)["state"]["services"]["web"]["config_parts"]
    assert recorded["command"] == fast["command"]  # parts without secrets stay as they were


def test_the_merge_request_plan_still_sees_a_changed_secret(tmp_path: Path) -> None:
    report = _report(_load(tmp_path, "hunter22"))
    source = baseline.Baseline("production")

    def reasons(m: Manifest) -> tuple[str, ...]:
        changes = baseline.compare(m, report, source).changes
        assert len(changes) == 1, changes
        (change,) = changes
        return change.reasons if change.action != "unchanged" else ()

    assert reasons(_load(tmp_path, "hunter22")) == ()
    assert reasons(_load(tmp_path, "hunter23")) == ("changed: environment",)
    (why,) = reasons(_load(tmp_path, "hunter22", key="signing-key-2"))
    assert why.startswith("changed: ") and "signing_key" in why, why
