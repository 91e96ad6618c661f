"""Run the deployer of this checkout as an installed deployer runs: from bytecode.

pip byte-compiles every module of a wheel it installs (the deployer image is built that
way), so an installed deployer reads ``.pyc`` files. A checkout run with
``PYTHONDONTWRITEBYTECODE=1`` (the image sets it; these machines do too) never writes
them, and an editable install then compiles the whole package from source on every run:
measured here, 96 modules and about 0.1 s of CPU per command that no installed deployer
pays. Each bench that times the CLI calls :func:`compile_package` once before timing.
"""

from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def compile_package() -> None:
    """Byte-compile ``deployer/`` as pip does at install (fresh ``.pyc`` beside each module)."""
    if not compileall.compile_dir(str(ROOT / "deployer"), quiet=1):
        raise SystemExit("could not byte-compile deployer/ (a syntax error?)")
