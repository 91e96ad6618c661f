"""The final summary of a deploy in the job log."""

from __future__ import annotations

from deployer.report.log import JobLog, format_table
from deployer.result import DeployResult


def summary_text(result: DeployResult) -> str:
    rows = [
        [s.host, s.name, str(s.status), f"{s.seconds:.1f}s", s.detail]
        for s in result.steps
        if s.kind != "lock"
    ]
    parts = [f"outcome: {result.outcome}"]
    if result.release:
        parts.append(f"release {result.release}")
    parts.append(f"{result.seconds:.1f}s")
    if result.url:
        parts.append(result.url)
    text = format_table(rows, ["host", "step", "status", "time", "detail"]) if rows else ""
    if result.digests:
        text += "\n" + format_table(sorted(result.digests.items()), ["service", "image"])
    return text + "\n" + " · ".join(parts) + (f"\nerror: {result.error}" if result.error else "")


def write_summary(log: JobLog, result: DeployResult) -> None:
    with log.section("deploy_summary", f"Summary: {result.app} → {result.environment}", False):
        log.text(summary_text(result))
