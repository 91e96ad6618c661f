"""Reports: the job log (GitLab collapsible sections, summary table), the JSON report,
the dotenv file, the JUnit XML and the Markdown for merge request notes.

``write_reports(result, directory, context=..., secrets=...)`` writes them all.
"""

from deployer.report.artifacts import write_reports

__all__ = ["write_reports"]
