"""What the GitLab tests share: the faked GitLab's addresses and tokens (the CI variables
of conftest's ``ci_env`` use them) and the API payloads in fixtures/*.json, shaped as
GitLab's API documentation shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SERVER = "https://gitlab.example.com"
API = f"{SERVER}/api/v4"
MERGE_SHA = "7b5c3cc8be40ee161ae89a06bba6229da1032a0c"
JOB_TOKEN = "job-token-value-9f2c"
WRITE_TOKEN = "glpat-write-token-value-77aa"
# The merge requests of the merged commit (project 35).
COMMIT_MRS = f"{API}/projects/35/repository/commits/{MERGE_SHA}/merge_requests"


def fixture(name: str) -> Any:
    """The JSON payload ``fixtures/<name>``."""
    return json.loads((Path(__file__).parent / "fixtures" / name).read_text())
