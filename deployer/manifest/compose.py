"""Compose files as the service source (``compose:`` in the manifest)."""

from __future__ import annotations

from deployer.manifest.yamlpos import Doc


def merge_compose(doc: Doc) -> None:
    """Not supported yet: report it at the ``compose`` key."""
    doc.problems.append(
        doc.problem(
            ("compose",),
            "`compose:` (services read from compose files) is not supported yet",
            "copy the services into the manifest's `services:`",
            key=True,
        )
    )
