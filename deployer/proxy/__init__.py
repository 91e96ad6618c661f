"""The edge proxy: one Caddy per host that owns the public ports and routes by host name.

- ``routes``: pure. The Caddy JSON of the proxy's base config and of one app's routes, the
  route ids that say which app owns a route, and host-name claims.
- ``caddy``: the adapter. Runs, upgrades and health-checks the proxy container on one Docker
  host and talks to Caddy's admin API through ``docker exec`` (any transport).
- ``switch``: what the rollout calls. Claims the app's routes under the per-host proxy
  lock, moves a route to new containers in one atomic change, drains and undoes.

A route's upstreams are read by Caddy from one small file per replica (``{file.*}``
placeholders), written atomically (rename) by the deployer: moving traffic to a new
container is a file rename, not a config reload, so no client connection is ever closed by
a switch (a Caddy reload closes idle keep-alive connections, and a client that sends on
one at that moment sees its request fail).
"""
