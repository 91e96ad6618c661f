"""Keep secret values out of everything the deployer writes.

Service environment values, registry passwords and GitLab tokens are secrets. The
deploy result never holds them, but log excerpts come from the app's own containers,
which may print their environment: every report passes through ``Redactor``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from deployer.manifest.model import Manifest

MASK = "[MASKED]"
MIN_LENGTH = 6  # shorter values ("1", "true", "8080") are not treated as secrets
SECRET_VARIABLES = (
    "CI_JOB_TOKEN",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPLOY_PASSWORD",
    "DEPLOYER_GITLAB_TOKEN",
    "DOCKER_AUTH_CONFIG",
    "DOCKER_TLS_KEY",
    "SSH_PRIVATE_KEY",
)


_NOT_SECRET = re.compile(r"\d{1,3}(\.\d{1,3}){3}(:\d+)?")  # an IPv4 address[:port]


def _public(manifest: Manifest) -> set[str]:
    """Strings the deployer prints anyway: masking an environment value equal to one of
    them (``APP_ENV: production``) would only garble the output."""
    env = manifest.environment
    out = {manifest.app, env.name, env.url or "", *env.hosts}
    for svc in manifest.services:
        out.update((svc.name, svc.image))
    return out


def secret_values(
    manifest: Manifest | None = None, environ: Mapping[str, str] | None = None
) -> set[str]:
    """Every value that must never be written: the services' environment values, the
    registry passwords and the GitLab/registry tokens in the job's variables."""
    out: set[str] = set()
    if manifest is not None:
        values: set[str] = set()
        for svc in manifest.services:
            values.update(v for _, v in svc.environment)
        values.update(v for _, v in manifest.environment.variables)
        public = _public(manifest)
        out.update(v for v in values if v not in public and not _NOT_SECRET.fullmatch(v))
        out.update(r.password for r in manifest.registries)  # always, whatever they look like
        out.update(w.url for w in manifest.notify.webhooks)  # a webhook URL is its token
        out.update(_secret_files(manifest))
    if environ is not None:
        out.update(environ.get(k, "") for k in SECRET_VARIABLES)
    return {v for v in out if len(v) >= MIN_LENGTH}


def _secret_files(manifest: Manifest) -> set[str]:
    """The content of every compose secret (a variable's value, or a small file's text)."""
    out: set[str] = set()
    for svc in manifest.services:
        for fm in svc.files:
            if fm.kind != "secret":
                continue
            text = fm.content
            if text is None and fm.source is not None:
                try:
                    with open(fm.source, encoding="utf-8") as f:
                        text = f.read(65536)
                except (OSError, UnicodeDecodeError):
                    text = None
            if text:
                out.add(text)
                out.add(text.strip())
    return out


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_LENGTH}, key=len, reverse=True)
        # Each line of a multi-line secret (a key file) is a secret of its own.
        for s in list(self._secrets):
            for line in s.splitlines():
                if len(line.strip()) >= MIN_LENGTH and line.strip() not in self._secrets:
                    self._secrets.append(line.strip())
        self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._secrets)
