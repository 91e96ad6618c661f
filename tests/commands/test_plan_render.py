"""The plan's three renderings, from plan data alone (no engine)."""

from __future__ import annotations

import json

from deployer.manifest.model import Environment, Manifest, Port, Service
from deployer.plan import Observed, ObservedContainer, make_plan
from deployer.report.plan import render, short_digest

D1 = "reg.example/shop/web@sha256:" + "ab" * 32
D2 = "reg.example/shop/web@sha256:" + "cd" * 32
SECRET = "pa55-w0rd-value"


def plan():  # type: ignore[no-untyped-def]
    old = Service("web", "reg.example/shop/web:v1", environment=(("DB_PASSWORD", "old"),))
    web = Service("web", "reg.example/shop/web:v1", environment=(("DB_PASSWORD", SECRET),),
                  ports=(Port(8080, 80),), replicas=2)
    api = Service("api", "reg.example/shop/api:v1", depends_on=(("web", "service_started"),))
    m = Manifest("deploy.yml", "shop", Environment("prod"), (web, api))
    running = ObservedContainer(
        id="c1", name="shop-prod-web-1", service="web", replica=1, running=True,
        image_digest=D1, config_hash=old.config_hash(), config_parts=old.config_parts(),
    )
    orphan = ObservedContainer(id="c9", name="shop-prod-cron|x-1", service="cron|x", replica=1,
                               running=True, image_digest=D1, config_hash="h")
    return make_plan(
        m, [Observed("ssh://deploy@web1:22", (running, orphan))],
        {"web": D2, "api": "reg.example/shop/api@sha256:" + "ef" * 32},
    )


def test_short_digest() -> None:
    assert short_digest(D1) == "ab" * 6
    assert short_digest("sha256:" + "12" * 32) == "12" * 6
    assert short_digest(f"{D1}, {D2}") == "abababababab,cdcdcdcdcdcd"
    assert short_digest(None) == "-"


def test_text_table() -> None:
    text = render(plan(), "text")
    lines = text.splitlines()
    assert lines[0] == "Plan for shop → prod (1 host)"
    assert lines[2].split() == ["host", "service", "action", "reason", "digest", "(old", "→",
                                "new)", "strategy", "wave"]
    web = next(line for line in lines if " web " in line)
    assert "replace (1→2)" in web
    assert "new image digest; config changed: environment, ports; scale 1 → 2" in web
    assert "abababababab → cdcdcdcdcdcd" in web and "stop-first" in web
    assert "waves: [web] → [api]" in text
    assert text.rstrip().endswith("Plan: 1 to create, 1 to replace, 1 to remove.")
    assert SECRET not in text and "old" not in web.split("reason")[0]


def test_json_keys_are_stable() -> None:
    data = json.loads(render(plan(), "json"))
    assert list(data) == ["format", "app", "environment", "changes", "waves", "digests",
                          "hosts", "summary"]
    assert data["format"] == "deployer-plan/1"
    assert data["summary"] == {"create": 1, "replace": 1, "scale": 0, "remove": 1,
                               "unchanged": 0}
    assert data["waves"] == [["web"], ["api"]]
    step = data["hosts"][0]["steps"][0]
    assert set(step) == {"service", "action", "reasons", "old_digest", "new_digest", "strategy",
                         "strategy_reason", "replicas_before", "replicas_after", "wave",
                         "adopted", "replace", "remove"}
    assert set(data["hosts"][0]) == {"host", "changes", "steps", "leftovers"}
    assert (step["service"], step["action"], step["replace"], step["wave"]) == (
        "web", "replace", ["c1"], 0
    )
    assert data["hosts"][0]["steps"][2]["remove"] == ["c9"]
    assert SECRET not in json.dumps(data)


def test_markdown_escapes_table_cells() -> None:
    md = render(plan(), "markdown")
    assert md.startswith("### Deploy plan: `shop` → `prod`\n")
    assert "| host | service | action |" in md
    assert "| ssh://deploy@web1:22 | cron\\|x | remove |" in md
    assert "Order: `web` → `api`" in md
    assert SECRET not in md
