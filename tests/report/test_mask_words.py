"""A short value that is a word of the manifest's own vocabulary (``NETWORK_MODE: host``)
is no secret anyone can keep (GitLab masks no value shorter than 8 characters), and
masking it rewrote the deployer's own words: the summary's ``host`` column, "the host
path", "(as it is on the host)" all read ``[MASKED]``. Such a value is left; a short
value that is not such a word, and every long one, are still masked, against the real
engine's own error text."""

from __future__ import annotations

import io
from pathlib import Path

import docker
import pytest

from deployer.cli import main
from deployer.errors import EXIT_INVALID
from tests.conftest import Cleanup
from tests.testenv import TestEnv

pytestmark = pytest.mark.integration

SHORT_SECRET = "pw5ch"  # short, but no word: masked as a whole word
MANIFEST = """\
app: {app}
environments:
  production: {{}}
services:
  web:
    image: {image}
    user: ${{APP_USER}}
    environment:
      APP_USER: ${{APP_USER}}
      NETWORK_MODE: host
{volumes}rollout:
  health_timeout: 10s
"""


def _deploy(
    tmp_path: Path,
    text: str,
    testenv: TestEnv,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str]:
    """``deploy`` in this process: exit code, stdout and stderr, and every report."""
    for var in ("CI_ENVIRONMENT_NAME", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "CI_JOB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", testenv.engine_host)
    monkeypatch.setenv("APP_USER", SHORT_SECRET)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deploy.yml").write_text(text)
    out = io.StringIO()
    reports = tmp_path / "reports"
    code = main(["deploy", "-f", "deploy.yml", "--report-dir", str(reports)], out=out)
    written = out.getvalue() + capsys.readouterr().err
    for path in sorted(reports.rglob("*")):
        if path.is_file():
            written += path.read_text(errors="replace")
    return code, written


def test_the_secret_is_masked_and_the_words_are_kept(
    tmp_path: Path,
    app: str,
    testenv: TestEnv,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = MANIFEST.format(app=app, image=testenv.image_v1, volumes="")
    code, out = _deploy(tmp_path, text, testenv, monkeypatch, capsys)
    assert code == 1, out
    assert "unable to find user [MASKED]" in out, out  # the engine quoted the secret
    assert SHORT_SECRET not in out
    # the summary's own column, once "[MASKED]  step  status"
    assert any(line.split()[:2] == ["host", "step"] for line in out.splitlines() if line), out
    assert "[MASKED]" not in out.replace("unable to find user [MASKED]", ""), out


def test_a_refusal_keeps_its_words(
    tmp_path: Path,
    app: str,
    cleanup: Cleanup,
    testenv: TestEnv,
    engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An existing volume binding /etc is refused (exit 2): the message says "as it is on
    the host" and "the host path", and NETWORK_MODE=host rewrites neither."""
    name = f"{app}-hostconf"
    engine.volumes.create(
        name,
        driver="local",
        driver_opts={"type": "none", "o": "bind", "device": "/etc"},
    )  # made by hand: another app's would be refused first (foreign-volume)
    cleanup.later(lambda: engine.volumes.get(name).remove(force=True))
    volumes = f"    volumes: [conf:/mnt/conf]\nvolumes:\n  conf: {{external: true, name: {name}}}\n"
    text = MANIFEST.format(app=app, image=testenv.image_v1, volumes=volumes)
    code, out = _deploy(tmp_path, text, testenv, monkeypatch, capsys)
    assert code == EXIT_INVALID, out
    assert f'the volume "{name}" (as it is on the host) mounts' in out, out
    assert "the host path /etc" in out, out
    assert 'add "system-bind" to `policy: {allow: [...]}`' in out, out
    assert "[MASKED]" not in out, out
