"""`deployer validate [-f FILE] [--env NAME] [--format text|json]`.

Prints every problem (file:line:column: key.path: message (fix: ...)) and exits 2, or
prints a one-line summary and exits 0. Warnings never change the exit code. Values of
`environment` entries and registry passwords never appear in the output.
"""

from __future__ import annotations

import json
import os
from typing import TextIO

from deployer.errors import EXIT_INVALID, EXIT_OK
from deployer.manifest import check_manifest
from deployer.requests import ValidateRequest


def run(req: ValidateRequest, out: TextIO) -> int:
    report = check_manifest(req.file, req.env, os.environ)
    if req.format == "json":
        json.dump(report.as_dict(), out, indent=2)
        out.write("\n")
    else:
        for problem in report.problems:
            out.write(problem.render() + "\n")
        for warning in report.warnings:
            out.write(warning.render() + "\n")
        out.write(report.summary() + "\n")
    return EXIT_OK if report.ok else EXIT_INVALID
