"""Keep secret values out of everything the deployer writes.

Service (and hook) environment values, registry passwords and GitLab tokens are secrets. The
deployer never prints an environment value itself (plans and reports name keys, never
values); but log excerpts come from the app's own containers, which may print their
environment, so every report passes through ``Redactor``. The rule, as GitLab masks job
logs:

- a value of at least :data:`ANYWHERE_MIN` (8) characters is masked wherever it appears;
- a value of :data:`WORD_MIN` to 7 characters is masked where it stands as a whole word
  (not inside a longer run of letters and digits: ``PASS=abcde`` is masked, ``abcdefg``
  in ``xabcdefgx`` is not);
- shorter values, the words true/false/yes/no/on/off, and a value of fewer than 8
  characters that is a word of the manifest's own vocabulary (``host``, ``none``,
  ``bridge``: :func:`deployer.manifest.schema.ordinary_word`) are not masked: they are not
  secrets anyone can keep (GitLab masks no value shorter than 8 characters), and masking
  them would garble every line and the deployer's own fixes (``NETWORK_MODE=host`` made
  ``add "host-network"`` read ``add "[MASKED]-network"``);
- names the deployer prints are never masked: the app, environment, service, host and
  image names (``MYSQL_DATABASE=nextcloud`` masks "nextcloud" in a log line, never in
  the app name ``rwnextcloud``).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
from collections.abc import Iterable, Mapping

from deployer.manifest.files import FileRefused, read_limited
from deployer.manifest.model import Manifest
from deployer.manifest.schema import ordinary_word

MASK = "[MASKED]"
ANYWHERE_MIN = 8
WORD_MIN = 4
MIN_LENGTH = WORD_MIN  # shorter values are never masked
_EDGE, _EDGE_END = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"  # a whole word
_PLAIN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none"})
SECRET_VARIABLES = (
    "CI_JOB_TOKEN",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPLOY_PASSWORD",
    "DEPLOYER_GITLAB_TOKEN",
    "DOCKER_AUTH_CONFIG",
    "DOCKER_TLS_KEY",
    "SSH_PRIVATE_KEY",
)


class Secrets(frozenset[str]):
    """Secret values, and the names that are never masked (``names``)."""

    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, values: Iterable[str], names: Iterable[str] = ()) -> Secrets:
        out = cls(values)
        out.names = frozenset(n for n in names if n)
        return out


_NOT_SECRET = re.compile(r"\d{1,3}(\.\d{1,3}){3}(:\d+)?")  # an IPv4 address[:port]


def names_of(manifest: Manifest) -> set[str]:
    """The names the deployer prints: never masked, never garbled."""
    env = manifest.environment
    out = {manifest.app, env.name, *env.hosts}
    for svc in manifest.services:
        out.update((svc.name, svc.image))
    return {n for n in out if n}


def _public(manifest: Manifest) -> set[str]:
    """Strings the deployer prints anyway: masking an environment value equal to one of
    them (``APP_ENV: production``) would only garble the output."""
    return {*names_of(manifest), manifest.environment.url or ""}


def _maskable(value: str) -> bool:
    return len(value) >= WORD_MIN and value.lower() not in _PLAIN_WORDS and not ordinary_word(value)


def secret_values(
    manifest: Manifest | None = None, environ: Mapping[str, str] | None = None
) -> Secrets:
    """Every value that must never be written: the services' and their hooks' environment
    values, the registry passwords, the compose secrets, the routes' private keys and the
    GitLab/registry tokens in the job's variables; with the manifest's names, which are
    never masked."""
    out: set[str] = set()
    names: set[str] = set()
    if manifest is not None:
        values: set[str] = set()
        for svc in manifest.services:
            values.update(v for _, v in svc.environment)
            for hook in (*svc.post_start, *svc.pre_stop):  # a hook prints what it likes
                values.update(v for _, v in hook.environment)
        values.update(v for _, v in manifest.environment.variables)
        public = _public(manifest)
        out.update(v for v in values if v not in public and not _NOT_SECRET.fullmatch(v))
        out.update(r.password for r in manifest.registries)  # always, whatever they look like
        out.update(w.url for w in manifest.notify.webhooks)  # a webhook URL is its token
        out.update(_secret_files(manifest))
        names = names_of(manifest)
    if environ is not None:
        out.update(environ.get(k, "") for k in SECRET_VARIABLES)
        out.update(_docker_auth_secrets(environ.get("DOCKER_AUTH_CONFIG", "")))
    return Secrets.of({v for v in out if _maskable(v)}, names)


def _docker_auth_secrets(text: str) -> set[str]:
    """The passwords in ``DOCKER_AUTH_CONFIG`` (GitLab's JSON): each ``password``, each
    ``auth`` (base64 of user:password) and the password in it, each token. The whole
    JSON is a secret too, but a registry's or engine's answer quotes one credential,
    never the JSON; and GitLab cannot mask the variable (its characters are not
    allowed in a masked variable)."""
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        return set()
    auths = data.get("auths") if isinstance(data, dict) else None
    out: set[str] = set()
    for entry in auths.values() if isinstance(auths, dict) else ():
        if not isinstance(entry, dict):
            continue
        for key in ("password", "auth", "identitytoken", "registrytoken"):
            if isinstance(entry.get(key), str):
                out.add(entry[key])
        if isinstance(entry.get("auth"), str):
            try:
                decoded = base64.b64decode(entry["auth"]).decode()
            except (binascii.Error, UnicodeDecodeError):
                continue
            out.update((decoded, decoded.partition(":")[2]))
    return out


def _secret_files(manifest: Manifest) -> set[str]:
    """The content of every compose secret (a variable's value, or a small file's text)
    and of the private key of every route with certificate files."""
    out: set[str] = set()
    for svc in manifest.services:
        sources: list[tuple[str | None, str | None]] = [
            (fm.content, fm.source) for fm in svc.files if fm.kind == "secret"
        ]
        if svc.proxy is not None and svc.proxy.key:
            sources.append((None, svc.proxy.key))
        for content, source in sources:
            text = content
            if text is None and source is not None:
                try:  # a regular file only: a FIFO would block, a device never end
                    text = read_limited(source, 1 << 20).decode("utf-8")
                except (OSError, UnicodeDecodeError, FileRefused):
                    text = None
            if text:
                out.add(text)
                out.add(text.strip())
    return out


class Redactor:
    def __init__(self, secrets: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        values = {s for s in secrets if _maskable(s)}
        # Each line of a multi-line secret (a key file) is a secret of its own.
        for s in list(values):
            for line in s.splitlines():
                if _maskable(line.strip()):
                    values.add(line.strip())
        self._secrets = sorted(values, key=len, reverse=True)  # a secret containing another
        self._names = sorted({*names, *getattr(secrets, "names", ())} - {""}, key=len, reverse=True)
        parts = [
            re.escape(s) if len(s) >= ANYWHERE_MIN else rf"{_EDGE}{re.escape(s)}{_EDGE_END}"
            for s in self._secrets
        ]
        self._pattern = re.compile("|".join(parts)) if parts else None

    def _protected(self, text: str) -> tuple[list[int], list[int]]:
        """Where the names stand in ``text``: the spans' starts in order, and for each
        the furthest end of a span starting there or before."""
        spans = []
        for name in self._names:
            start = text.find(name)
            while start >= 0:
                spans.append((start, start + len(name)))
                start = text.find(name, start + 1)
        spans.sort()
        starts, reach, furthest = [], [], -1
        for a, b in spans:
            furthest = max(furthest, b)
            starts.append(a)
            reach.append(furthest)
        return starts, reach

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        matches = list(self._pattern.finditer(text))
        if not matches:
            return text
        starts, reach = self._protected(text) if self._names else ([], [])
        out: list[str] = []
        at = 0
        for m in matches:
            i = bisect.bisect_right(starts, m.start())
            if i and reach[i - 1] >= m.end():
                continue  # inside a name: a name is never masked
            out.append(text[at : m.start()])
            out.append(MASK)
            at = m.end()
        out.append(text[at:])
        return "".join(out)

    def lines(self, texts: list[str]) -> list[str]:
        """``self`` on each of ``texts`` (lines without line breaks): one pass over them
        all (tens of thousands of log lines), with the same result as line by line."""
        if self._pattern is None or not texts:
            return texts
        joined = "\n".join(texts)
        if self._pattern.search(joined) is None:
            return texts
        masked = self(joined).split("\n")
        if len(masked) != len(texts):  # a secret of several lines matched across lines
            return [self(t) for t in texts]
        return masked

    def __bool__(self) -> bool:
        return bool(self._secrets)
