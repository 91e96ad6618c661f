"""The deploy result as JSON-ready data (``deploy-report.json``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from typing import Any

from deployer import __version__
from deployer.context import Context
from deployer.manifest.model import Manifest
from deployer.plan import Plan
from deployer.result import DeployResult

SCHEMA_VERSION = 1


def plan_data(plan: Plan) -> dict[str, Any]:
    return {
        "app": plan.app,
        "environment": plan.environment,
        "changes": plan.changes,
        "waves": [list(w) for w in plan.waves],
        "digests": dict(plan.digests),
        "hosts": [
            {
                "host": h.host,
                "changes": h.changes,
                "steps": [
                    {
                        "service": s.service,
                        "action": str(s.action),
                        "reasons": list(s.reasons),
                        "old_digest": s.old_digest,
                        "new_digest": s.new_digest,
                        "strategy": s.strategy,
                        "strategy_reason": s.strategy_reason,
                        "replicas_before": s.replicas_before,
                        "replicas_after": s.replicas_after,
                        "wave": s.wave,
                        "adopted": s.adopted,
                    }
                    for s in h.steps
                ],
                "leftovers": [
                    {
                        "id": c.id,
                        "name": c.name,
                        "service": c.service,
                        "running": c.running,
                        "why": c.why,
                        "action": "stop" if c.keep else "remove",
                    }
                    for c in h.leftovers
                ],
            }
            for h in plan.hosts
        ],
    }


def context_data(ctx: Context) -> dict[str, Any]:
    data = {
        f.name: getattr(ctx, f.name)
        for f in dataclasses.fields(ctx)
        if f.name not in ("merge_request", "notes")
    }
    mr = ctx.merge_request
    data["merge_request"] = dataclasses.asdict(mr) if mr else None
    if mr:
        data["merge_request"]["labels"] = list(mr.labels)
    data["notes"] = list(ctx.notes)
    return data


def state_data(manifest: Manifest, result: DeployResult) -> dict[str, Any]:
    """What the environment runs after this run, as the manifest describes it: per service
    the image as written, the digest, the replica count and the configuration's hashes
    (per key, never a value; those of secret values sealed: ``Service.recorded_parts``).
    A later merge request plan compares its manifest with it without contacting any host
    (``deployer plan --against last-deployment``)."""
    digests = {**(result.plan.digests if result.plan else {}), **result.digests}
    services: dict[str, Any] = {}
    for svc in manifest.services:
        parts = svc.recorded_parts(manifest.app, manifest.environment.name)
        blob = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        services[svc.name] = {
            "image": svc.image,
            "digest": digests.get(svc.name),
            "replicas": svc.replicas,
            "config_hash": hashlib.sha256(blob.encode()).hexdigest()[:16],
            "config_parts": parts,
        }
    return {"engine": manifest.environment.engine, "services": services}


def result_data(
    result: DeployResult, context: Context | None = None, manifest: Manifest | None = None
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "deployer_version": __version__,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "app": result.app,
        "environment": result.environment,
        "outcome": str(result.outcome),
        "failed": result.failed,
        "error": result.error,
        "release": result.release,
        "previous_release": result.previous_release,
        "url": result.url,
        "started_at": result.started_at,
        "seconds": round(result.seconds, 3),
        "digests": dict(result.digests),
        "hosts": dict(result.hosts),
        "steps": [
            {
                "host": s.host,
                "name": s.name,
                "kind": s.kind,
                "service": s.service,
                "status": str(s.status),
                "started_at": s.started_at,
                "seconds": round(s.seconds, 3),
                "detail": s.detail,
                "log_excerpt": s.log_excerpt,
            }
            for s in result.steps
        ],
        "plan": plan_data(result.plan) if result.plan else None,
        "context": context_data(context) if context else None,
        "state": state_data(manifest, result) if manifest is not None else None,
    }
