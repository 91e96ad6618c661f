"""The proxy's Caddy JSON and host-name claims, as data (no Docker)."""

from __future__ import annotations

from deployer.manifest.model import EdgeProxy, Route
from deployer.proxy import routes as R
from deployer.proxy import tls as T


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
    edge = EdgeProxy(acme_directory="https://acme.test/dir", acme_ca_root="/x")
    policy = T.acme_policy(edge, "shop", "review/1", ["b.test", "a.test"])
    (issuer,) = policy["issuers"]
    assert issuer["ca"] == "https://acme.test/dir"
    assert issuer["trusted_roots_pem_files"] == [T.ca_root_file("shop", "review/1")]
    assert policy["subjects"] == ["a.test", "b.test"]


def _config(
    policies: list[dict[str, object]], pem: list[dict[str, object]], skip: list[str]
) -> dict[str, object]:
    routes = [R.route_json(R.route_id("shop", "prod", "web"), Route(host="shop.test", port=1), 1)]
    return {
        "apps": {
            "http": {
                "servers": {
                    R.TLS_SERVER: {"routes": routes, "automatic_https": {"skip_certificates": skip}}
                }
            },
            "tls": {"automation": {"policies": policies}, "certificates": {"load_pem": pem}},
        }
    }


def test_each_app_changes_only_its_own_part_of_the_tls_settings() -> None:
    edge = EdgeProxy(acme_directory="https://acme.test/dir")
    blog = T.acme_policy(
        EdgeProxy(acme_directory="https://other.test/dir"), "blog", "prod", ["blog.test"]
    )
    legacy = {"issuers": [{"module": "acme", "ca": "https://old.test/dir"}]}  # no subjects
    pem_blog = {"certificate": "B", "key": "K", "tags": [R.route_id("blog", "prod", "api")]}
    pem_shop = {"certificate": "S", "key": "K", "tags": [R.route_id("shop", "prod", "web")]}
    config = _config([legacy, blog], [pem_blog, pem_shop], ["shop.test", "api.blog.test"])
    # shop moves shop.test from files to ACME
    mine = T.acme_policy(edge, "shop", "prod", ["shop.test"])
    part = T.Part(policy=mine, hosts=frozenset({"shop.test"}))
    got = T.changes(config, "shop", "prod", part)
    # policies naming hosts first (the proxy takes the first that names one), the rest kept
    assert got[T.AUTOMATION]["policies"] == [blog, mine, legacy]
    assert got[T.LOAD_PEM] == [pem_blog]  # its own old certificate goes, blog's stays
    assert got[T.SKIP] == ["api.blog.test"]  # ACME may now get shop.test's certificate
    # down: its part goes, nothing else
    gone = T.changes(
        config, "shop", "prod", T.Part(hosts=frozenset(T.hosts_of(config, "shop", "prod")))
    )
    assert gone[T.AUTOMATION]["policies"] == [blog, legacy]
    assert gone[T.SKIP] == ["api.blog.test"]
    # blog's deploy, as it is: nothing to change (a reload of the proxy closes idle
    # connections: no change is sent when none is needed)
    config = _config([blog, legacy], [pem_shop, pem_blog], ["shop.test", "api.blog.test"])
    same = T.Part(
        policy=blog,
        certificates=[pem_blog],
        file_hosts=frozenset({"api.blog.test"}),
        hosts=frozenset({"blog.test", "api.blog.test"}),
    )
    assert T.changes(config, "blog", "prod", same) == {}
