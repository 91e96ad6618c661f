"""Pieces of the status text shared by both engines' status output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def host_heading(where: str, data: Mapping[str, Any], host: Mapping[str, Any]) -> str:
    """``<where>: <app>/<environment> · release <id>`` (or ``· no release``)."""
    head = f"{where}: {data['app']}/{data['environment']}"
    latest = host["latest_release"]
    return head + (f" · release {latest}" if latest else " · no release")


def host_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """The host's table, or a line saying that nothing of the app runs there."""
    from deployer.report.log import format_table

    return format_table(rows, headers) if rows else "  (nothing of this app runs here)\n"
