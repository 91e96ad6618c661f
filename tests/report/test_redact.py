from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

from deployer.manifest.model import Environment, Manifest, RegistryAuth, Route, Service
from deployer.report.redact import MASK, Redactor, Secrets, secret_values


def _manifest() -> Manifest:
    return Manifest(
        path="deploy.yml",
        app="shop",
        environment=Environment(
            "production", url="https://shop.example.com", variables=(("X", "env-var-value"),)
        ),
        services=(
            Service(
                "web",
                "registry.example.com/shop/web:1.2",
                environment=(
                    ("DB_PASSWORD", "s3cret-db-pass"),
                    ("APP_ENV", "production"),  # the environment's name: printed anyway
                    ("LISTEN", "0.0.0.0:8080"),  # an address, not a secret
                    ("DEBUG", "1"),
                    ("PIN", "20261123"),  # digits can be secrets
                ),
            ),
        ),
        registries=(RegistryAuth("registry.example.com", "ci", "12345678"),),
    )


def test_secret_values() -> None:
    values = secret_values(_manifest(), {"CI_JOB_TOKEN": "job-token-xyz", "OTHER": "visible"})
    assert values == {
        "s3cret-db-pass",
        "env-var-value",
        "20261123",
        "12345678",
        "job-token-xyz",
    }


def test_redactor_masks_longest_first_and_lines_of_multiline_secrets() -> None:
    key = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n-----END KEY-----"
    redact = Redactor(["abcdefgh", "abcdefgh-longer", key])
    assert redact("x abcdefgh-longer y abcdefgh") == f"x {MASK} y {MASK}"
    assert redact("line: AAAAB3NzaC1yc2EAAAADAQABAAABAQ") == f"line: {MASK}"
    assert not Redactor(["abc", "true", "off"])  # too short, or plain words
    assert Redactor(["short"])


def test_long_values_anywhere_short_ones_as_whole_words() -> None:
    redact = Redactor(["pw8chars", "abcde", "ab"])
    assert redact("x=pw8chars;yy-pw8charsxx") == f"x={MASK};yy-{MASK}xx"
    assert redact("PASS=abcde and abcde. but xabcdex, abcde1") == (
        f"PASS={MASK} and {MASK}. but xabcdex, abcde1"
    )
    assert redact("ab is never masked: abc ab") == "ab is never masked: abc ab"


def test_short_words_of_the_manifest_are_not_masked() -> None:
    """A value shorter than 8 characters (GitLab masks none) that is a word of the
    manifest's vocabulary (NETWORK_MODE=host) is left: masking it rewrote the deployer's
    own fixes. A short value that is no such word, and a long one, are still masked."""
    m = dataclasses.replace(
        _manifest(),
        services=(
            Service(
                "web",
                "registry.example.com/shop/web:1.2",
                environment=(("NETWORK_MODE", "host"), ("RESTART", "always"), ("PW", "pw5ch")),
            ),
        ),
    )
    assert secret_values(m, {}) == {"env-var-value", "pw5ch", "12345678"}
    redact = Redactor(secret_values(m, {}))
    hint = 'add "host-network" to `policy: {allow: [...]}`; the host path /etc'
    assert redact(hint) == hint
    assert redact("password pw5ch, token 12345678") == f"password {MASK}, token {MASK}"
    assert Redactor(["Host1", "HOST"])("Host1 HOST") == f"{MASK} {MASK}"  # not the words


def test_names_are_never_garbled() -> None:
    """MYSQL_DATABASE=nextcloud once turned the app rwnextcloud into rw[MASKED]."""
    m = Manifest(
        path="deploy.yml",
        app="rwnextcloud",
        environment=Environment("production", hosts=("ssh://deploy@nextcloud-host",)),
        services=(
            Service(
                "nextcloud",
                "registry.example.com/rwnextcloud/app:1",
                environment=(("MYSQL_DATABASE", "nextcloud"), ("MYSQL_PASSWORD", "pw5ch")),
            ),
        ),
    )
    secrets = secret_values(m, {})
    assert secrets == {"pw5ch"}  # "nextcloud" is the service's name: printed anyway
    m2 = Manifest(
        path="deploy.yml",
        app="rwnextcloud",
        environment=Environment("production"),
        services=(
            Service(
                "web",
                "registry.example.com/rwnextcloud/app:1",
                environment=(("MYSQL_DATABASE", "nextcloud"),),
            ),
        ),
    )
    redact = Redactor(secret_values(m2, {}))
    line = "app rwnextcloud, image registry.example.com/rwnextcloud/app:1, db nextcloud"
    assert redact(line) == (
        f"app rwnextcloud, image registry.example.com/rwnextcloud/app:1, db {MASK}"
    )
    assert redact("rwnextcloud") == "rwnextcloud"  # the report's app field, DEPLOY_APP


def test_many_lines_at_once_as_line_by_line() -> None:
    """``lines`` masks a whole log read in one pass: exactly what masking each line does,
    names kept, whole-word values at line edges, a secret of several lines included."""
    key = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n-----END KEY-----"
    redact = Redactor(
        Secrets.of(["pw8chars", "abcde", "nextcloud", key], names=["rwnextcloud", "api"])
    )
    texts = [
        "abcde at the start",
        "at the end abcde",
        "xabcdex pw8charspw8chars",
        "app rwnextcloud db nextcloud",
        "-----BEGIN KEY-----",
        "AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
        "-----END KEY-----",
        "",
        "nothing here",
    ]
    assert redact.lines(texts) == [redact(t) for t in texts]
    assert redact.lines(texts)[3] == f"app rwnextcloud db {MASK}"
    assert redact.lines(texts[:4]) == [redact(t) for t in texts[:4]]
    plain = ["nothing", "to mask"]
    assert redact.lines(plain) is plain


def test_the_private_key_of_a_route_with_certificate_files_is_a_secret(tmp_path: Path) -> None:
    """The key file of ``proxy: {tls: {certificate, key}}`` is masked wherever its text
    shows (a proxy's error quoting what it was sent), like a compose secret's file."""
    key = tmp_path / "site-key.pem"
    body = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSRzg8DTHf7gZovd3"
    key.write_text(f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    route = Route("shop.example.com", 8080, tls="file", certificate=str(key), key=str(key))
    m = dataclasses.replace(
        _manifest(), services=(Service("web", "registry.example.com/shop/web:1.2", proxy=route),)
    )
    assert Redactor(secret_values(m, {}))(f"refused: {body}") == f"refused: {MASK}"


def test_the_passwords_inside_docker_auth_config_are_secrets() -> None:
    """An answer quotes one credential, never the whole JSON: each password, each auth
    (base64 of user:password) and the password in it are masked."""
    auth = base64.b64encode(b"deployer:b64-held-pass-77ac").decode()
    config = json.dumps(
        {
            "auths": {
                "registry.example.com": {"auth": auth},
                "other.example.com": {"username": "ci", "password": "plain-pass-3e19d0"},
            }
        }
    )
    redact = Redactor(secret_values(None, {"DOCKER_AUTH_CONFIG": config}))
    for value in ("b64-held-pass-77ac", "plain-pass-3e19d0", auth):
        assert redact(f"denied: {value}") == f"denied: {MASK}", value
    assert redact("user deployer") == "user deployer"  # a user name is not a secret
    assert secret_values(None, {"DOCKER_AUTH_CONFIG": "{not json"}) == {"{not json"}
