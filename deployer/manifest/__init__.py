"""The deploy manifest: loading with positions, validation, interpolation, the typed model.

Public API:
  load_manifest(path, env, environ) -> Manifest   (raises ManifestError with ALL problems)
  check_manifest(path, env, environ) -> CheckReport   (never raises for bad content)

Heavy imports (jsonschema) happen on first use, so importing the model stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from deployer.manifest.problems import CheckReport, ManifestError, Problem

if TYPE_CHECKING:
    from deployer.manifest.model import Manifest

__all__ = ["CheckReport", "ManifestError", "Problem", "check_manifest", "load_manifest"]


def load_manifest(
    path: str | os.PathLike[str], env: str | None, environ: Mapping[str, str]
) -> Manifest:
    """The manifest at ``path`` validated and interpolated for one environment.

    ``env`` None chooses CI_ENVIRONMENT_NAME from ``environ``, else the only environment.
    ``environ`` (the CI variables) overrides the environment's ``variables``.
    Raises ``ManifestError`` (exit 2) listing every problem of the file.
    """
    from deployer.manifest.loader import load_manifest as _load

    return _load(path, env, environ)


def check_manifest(
    path: str | os.PathLike[str], env: str | None, environ: Mapping[str, str]
) -> CheckReport:
    """All problems and warnings of the manifest (every environment if none is chosen)."""
    from deployer.manifest.loader import check_manifest as _check

    return _check(path, env, environ)
