"""Write every report of a deploy into one directory, secrets masked.

``deploy-report.json`` (plan, steps with timings, result, release, digests, hosts),
``deploy.env`` (dotenv for ``environment:url`` and later jobs), ``deploy-junit.xml``
(GitLab's test tab) and ``deploy-summary.md`` (the MR note).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deployer.context import Context
from deployer.errors import InvalidInput
from deployer.manifest.model import Manifest
from deployer.report.data import result_data
from deployer.report.dotenv import dotenv_vars, render_dotenv
from deployer.report.junit import render_junit
from deployer.report.markdown import result_markdown
from deployer.report.redact import Redactor
from deployer.result import DeployResult

JSON_NAME = "deploy-report.json"
DOTENV_NAME = "deploy.env"
JUNIT_NAME = "deploy-junit.xml"
MARKDOWN_NAME = "deploy-summary.md"


def _redact_data(value: Any, redact: Redactor) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _redact_data(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_data(v, redact) for v in value]
    return value


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_reports(
    result: DeployResult,
    directory: str | os.PathLike[str],
    *,
    context: Context | None = None,
    secrets: Iterable[str] = (),
    manifest: Manifest | None = None,
) -> dict[str, Path]:
    """Write the four reports; returns their paths by kind (json, dotenv, junit, markdown)."""
    redact = Redactor(secrets)
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
        data = _redact_data(result_data(result, context, manifest), redact)
        paths = {
            "json": out / JSON_NAME,
            "dotenv": out / DOTENV_NAME,
            "junit": out / JUNIT_NAME,
            "markdown": out / MARKDOWN_NAME,
        }
        _write(paths["json"], redact(json.dumps(data, indent=2, ensure_ascii=False) + "\n"))
        _write(paths["dotenv"], redact(render_dotenv(dotenv_vars(result, context))))
        _write(paths["junit"], redact(render_junit(result)))
        _write(paths["markdown"], redact(result_markdown(result, context)))
    except OSError as e:
        raise InvalidInput(
            f"cannot write the reports to {out}: {e.strerror or e}",
            hint="pass a writable directory with --report-dir",
        ) from e
    return paths
