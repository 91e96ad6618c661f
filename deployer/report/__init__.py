"""Reports: the job log (GitLab collapsible sections, summary table), the JSON report,
the dotenv file, the JUnit XML and the Markdown for merge request notes."""
