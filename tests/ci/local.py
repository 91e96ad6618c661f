"""An app repository whose pipeline gitlab-ci-local runs against the real local engine
(shell executor, the jobs run this checkout's deployer), with one secret variable whose
every trace in what the jobs wrote the tests look for."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "templates" / "deploy.yml"
DEPLOYER = ROOT / ".venv" / "bin" / "deployer"


@dataclass
class LocalRepo:
    path: Path
    binary: Path  # gitlab-ci-local
    app: str
    secret: str  # the APP_SECRET variable of every pipeline

    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"git {args}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def init(self) -> None:
        """A git repository on main with a GitLab remote (the jobs read the project)."""
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", f"https://gitlab.example.com/shop/{self.app}.git")

    def pipeline(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """gitlab-ci-local ``args`` with none of our CI or deployer variables, the local
        engine and the secret."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("CI_", "GITLAB_", "DEPLOYER_"))
        }
        env["DOCKER_HOST"] = "unix:///var/run/docker.sock"
        return subprocess.run(
            [
                str(self.binary),
                "--force-shell-executor",
                "--no-color",
                "--variable",
                f"APP_SECRET={self.secret}",
                *args,
            ],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def assert_no_secret(self, *outputs: str) -> None:
        """The secret is in none of ``outputs``, the jobs' logs and their artifacts."""
        for text in outputs:
            assert self.secret not in text
        for path in (self.path / ".gitlab-ci-local").rglob("*"):
            if path.is_file() and ("output" in path.parts or "artifacts" in path.parts):
                assert self.secret.encode() not in path.read_bytes(), path
