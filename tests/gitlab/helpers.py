"""What the GitLab tests share: the faked GitLab's addresses and tokens (the CI variables
of conftest's ``ci_env`` use them) and the API payloads in fixtures/*.json, shaped as
GitLab's API documentation shows."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SERVER = "https://gitlab.example.com"
API = f"{SERVER}/api/v4"
MERGE_SHA = "7b5c3cc8be40ee161ae89a06bba6229da1032a0c"
JOB_TOKEN = "job-token-value-9f2c"
WRITE_TOKEN = "glpat-write-token-value-77aa"
# The merge requests of the merged commit (project 35).
COMMIT_MRS = f"{API}/projects/35/repository/commits/{MERGE_SHA}/merge_requests"
# A job holding a deploy lock (its URL, as the lock records its holder) and its API address.
HOLDER = f"{SERVER}/shop/checkout/-/jobs/76001"
HOLDER_JOB = f"{API}/projects/shop%2Fcheckout/jobs/76001"
# Only GitLab is faked: the engines' own HTTP (socket, TLS, SSH tunnels) goes through.
ENGINES = re.compile(r"^(http\+unix|http\+docker|https?://(127\.0\.0\.1|localhost))")


def fixture(name: str) -> Any:
    """The JSON payload ``fixtures/<name>``."""
    return json.loads((Path(__file__).parent / "fixtures" / name).read_text())
