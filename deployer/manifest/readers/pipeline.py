"""The sections about how a deploy runs: ``tasks:``, ``rollout:``, ``registry:``,
``gitlab:`` and ``notify:``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from deployer.manifest import parse
from deployer.manifest.model import (
    GitlabPolicy,
    NotifyPolicy,
    RegistryAuth,
    RolloutPolicy,
    Task,
    Webhook,
)
from deployer.manifest.problems import Path
from deployer.manifest.readers.values import MAX_NOTIFY_TIMEOUT, MIN_LOCK_TTL, SERVICE_NAME
from deployer.manifest.schema import did_you_mean

if TYPE_CHECKING:
    from deployer.manifest.readers.core import Builder


def tasks(b: Builder, raw: Any, raw_services: Any) -> tuple[Task, ...]:
    out = []
    if not isinstance(raw, dict):
        return ()
    services = list(raw_services) if isinstance(raw_services, dict) else []
    for name, spec in raw.items():
        path = ("tasks", name)
        if not SERVICE_NAME.match(name):
            b.err(path, f'"{name}" is not a valid task name', key=True)
        if not isinstance(spec, dict):
            continue
        svc = spec.get("service")
        if isinstance(svc, str) and svc not in services:
            guess = did_you_mean(svc, services)
            b.err(
                (*path, "service"),
                f'unknown service "{svc}"',
                f"did you mean `{guess}`?" if guess else "name one of: " + ", ".join(services),
            )
        cmd = spec.get("command")
        command = b.parsed((*path, "command"), parse.command, cmd) if cmd else None
        if cmd is not None and not command:
            b.err((*path, "command"), "the command is empty")
        when = spec.get("when", "before-deploy")
        timeout = b.dur((*path, "timeout"), spec.get("timeout"))
        if isinstance(svc, str) and command:
            out.append(
                Task(
                    name=name,
                    service=svc,
                    command=command,
                    when=when if when in ("before-deploy", "after-deploy") else "before-deploy",
                    timeout=timeout if timeout is not None else 600.0,
                )
            )
    return tuple(out)


def rollout(b: Builder, raw: Any) -> RolloutPolicy:
    if not isinstance(raw, dict):
        return RolloutPolicy()
    d = RolloutPolicy()
    kw: dict[str, Any] = {}
    for key in ("health_timeout", "healthy_after", "drain", "lock_ttl", "batch_pause"):
        if raw.get(key) is not None:
            value = b.dur(("rollout", key), raw[key])
            if value is not None:
                kw[key] = value
    if raw.get("canary") is not None:
        kw["canary"] = b.dur(("rollout", "canary"), raw["canary"])
    if kw.get("health_timeout") == 0:
        b.err(("rollout", "health_timeout"), "must be more than 0")
    if "lock_ttl" in kw and kw["lock_ttl"] < MIN_LOCK_TTL:
        b.err(
            ("rollout", "lock_ttl"),
            f"must be at least {MIN_LOCK_TTL:.0f}s: a shorter lease expires while it is "
            "being renewed, and two deploys could both hold it",
            'e.g. lock_ttl: "30m" (a running deploy renews it)',
        )
    keep = raw.get("keep_releases")
    if isinstance(keep, int) and not isinstance(keep, bool):
        kw["keep_releases"] = keep
    batch = raw.get("batch")
    if batch is not None and not isinstance(batch, bool):
        text = str(batch)
        m = re.match(r"^(\d+)(%?)$", text)
        if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(1)) > 100):
            b.err(
                ("rollout", "batch"),
                f'"{text}" is not a batch size',
                'use a count like 2 or a percentage like "25%"',
            )
        else:
            kw["batch"] = text
    return RolloutPolicy(**{**d.__dict__, **kw})


def registries(b: Builder, raw: Any) -> tuple[RegistryAuth, ...]:
    entries: list[tuple[Path, Any, Any]] = []
    if isinstance(raw, list):
        entries = [
            (("registry", i), e.get("server"), e) for i, e in enumerate(raw) if isinstance(e, dict)
        ]
    elif isinstance(raw, dict):
        entries = [(("registry", k), k, e) for k, e in raw.items() if isinstance(e, dict)]
    out = []
    seen: set[str] = set()
    for path, server, e in entries:
        user, pw = e.get("username"), e.get("password")
        if not isinstance(server, str) or not isinstance(user, str) or not isinstance(pw, str):
            continue
        if not server or "/" in server.removeprefix("https://").removeprefix("http://"):
            b.err(
                path,
                f'"{server}" is not a registry host; expected e.g. '
                "registry.example.com or registry.example.com:5000",
            )
            continue
        if server in seen:
            b.err(path, f'registry "{server}" is listed twice')
        seen.add(server)
        if not user or not pw:
            b.err(path, "username and password must not be empty (is a variable unset?)")
            continue
        out.append(RegistryAuth(server=server, username=user, password=pw))
    return tuple(out)


def gitlab(b: Builder, raw: Any) -> GitlabPolicy:
    if not isinstance(raw, dict):
        return GitlabPolicy()
    hold = raw.get("hold_label")
    return GitlabPolicy(
        hold_label=hold if isinstance(hold, str) else GitlabPolicy.hold_label,
        require_api=raw.get("require_api") is True,
    )


def notify(b: Builder, raw: Any) -> NotifyPolicy:
    if not isinstance(raw, dict):
        return NotifyPolicy()
    timeout = NotifyPolicy.timeout
    if raw.get("timeout") is not None:
        value = b.dur(("notify", "timeout"), raw["timeout"])
        if value is not None:
            if not 0 < value <= MAX_NOTIFY_TIMEOUT:
                b.err(
                    ("notify", "timeout"),
                    "must be more than 0 and at most 30s",
                    "a webhook that slow would hold up the job: use 5s or 10s",
                )
            else:
                timeout = value
    raw_hooks = raw.get("webhooks")
    hooks = [
        webhook(b, i, h) for i, h in enumerate(raw_hooks if isinstance(raw_hooks, list) else [])
    ]
    return NotifyPolicy(timeout=timeout, webhooks=tuple(h for h in hooks if h is not None))


def webhook(b: Builder, i: int, hook: Any) -> Webhook | None:
    if not isinstance(hook, dict) or not isinstance(hook.get("url"), str):
        return None  # the schema check names it
    url = hook["url"].strip()
    if not url:
        return None  # ${SLACK_WEBHOOK_URL:-} unset in this pipeline: no webhook
    if not re.match(r"^https?://[^/\s]+", url):
        # Never quote the URL: it is a secret.
        b.err(
            ("notify", "webhooks", i, "url"),
            "is not an http:// or https:// URL",
            "set the CI variable to the webhook's full URL",
        )
        return None
    fmt = hook.get("format", "json")
    on = hook.get("on")
    return Webhook(
        url=url,
        format=fmt if isinstance(fmt, str) else "json",
        on=tuple(on) if isinstance(on, list) else Webhook.on,
    )
