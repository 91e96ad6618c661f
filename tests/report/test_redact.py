from __future__ import annotations

from deployer.manifest.model import Environment, Manifest, RegistryAuth, Service
from deployer.report.redact import MASK, Redactor, secret_values


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
    assert not Redactor(["short"])
