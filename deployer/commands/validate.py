"""`deployer validate`."""

from __future__ import annotations

import argparse
from typing import TextIO

from deployer.errors import NotImplementedYet


def run(args: argparse.Namespace, out: TextIO) -> int:
    raise NotImplementedYet("`deployer validate` is not available in this version yet")
