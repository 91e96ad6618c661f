"""The proxy's Caddy JSON and host-name claims, as data (no Docker)."""

from __future__ import annotations

from deployer.manifest.model import EdgeProxy, Route
from deployer.proxy import routes as R


def test_route_ids_name_their_owner() -> None:
    rid = R.route_id("shop", "review-42", "web")
    assert R.owner_of(rid) == ("shop", "review-42", "web")
    assert R.owner_of("someone-else") is None
    assert R.upstream_file(rid, 2) == f"{R.UPSTREAMS}/shop@review-42@web/2"
    review = R.route_id("shop", "review/x", "web")
    assert R.upstream_file(review, 1) == f"{R.UPSTREAMS}/shop@review=x@web/1"


def test_no_two_routes_share_an_upstream_file() -> None:
    """Names may hold "-", "_", "." and an environment one "/": no (app, environment,
    service) names another's file, or one app could move another app's traffic."""
    owners = [
        ("a--b", "c", "d"),
        ("a", "b--c", "d"),
        ("a", "b", "c--d"),
        ("a", "b/c", "d"),
        ("a", "b", "c"),
        ("a.b", "c", "d"),
        ("a", "b.c", "d"),
        ("a", "b_c", "d"),
        ("a_b", "c", "d"),
    ]
    files = {R.upstream_file(R.route_id(*o), 1) for o in owners}
    assert len(files) == len(owners)


def test_a_route_reads_one_upstream_file_per_replica() -> None:
    rid = R.route_id("shop", "prod", "api")
    body = R.route_json(rid, Route(host="shop.example.com", port=9000, path_prefix="/api/"), 3)
    assert body["match"] == [{"host": ["shop.example.com"], "path": ["/api", "/api/*"]}]
    ups = body["handle"][0]["upstreams"]
    assert [u["dial"] for u in ups] == ["{file." + R.upstream_file(rid, n) + "}" for n in (1, 2, 3)]


def test_longer_path_prefixes_come_first() -> None:
    root = R.route_json("deployer:a:p:web", Route(host="a.test", port=1), 1)
    api = R.route_json("deployer:a:p:api", Route(host="a.test", port=1, path_prefix="/api"), 1)
    assert sorted([root, api], key=R.route_order_key) == [api, root]


def test_host_names_come_before_wildcards_whatever_their_paths() -> None:
    wild = R.route_json("deployer:a:p:web", Route(host="*.a.test", port=1, path_prefix="/x"), 1)
    named = R.route_json("deployer:b:p:web", Route(host="shop.a.test", port=1), 1)
    assert sorted([wild, named], key=R.route_order_key) == [named, wild]


def test_a_host_name_of_another_app_or_environment_conflicts() -> None:
    existing = [
        R.route_json(R.route_id("shop", "prod", "web"), Route(host="shop.test", port=1), 1),
        {"@id": "hand-made", "match": [{"host": ["other.test"]}]},
    ]
    mine = [Route(host="shop.test", port=1)]
    assert R.conflicts(existing, "shop", "prod", mine) == []
    (msg,) = R.conflicts(existing, "blog", "prod", mine)
    assert "shop/prod" in msg and "blog/prod" in msg and "shop.test" in msg
    assert R.conflicts(existing, "shop", "staging", mine)  # review apps: own host names


def test_tls_listener_only_when_https_is_set() -> None:
    assert R.TLS_SERVER in R.base_config(EdgeProxy())["apps"]["http"]["servers"]
    assert R.TLS_SERVER not in R.base_config(EdgeProxy(https=None))["apps"]["http"]["servers"]
    policy = R.acme_policy(EdgeProxy(acme_directory="https://acme.test/dir", acme_ca_root="/x"))
    (issuer,) = policy["policies"][0]["issuers"]
    assert issuer["ca"] == "https://acme.test/dir"
    assert issuer["trusted_roots_pem_files"] == [R.ACME_CA_ROOT]
