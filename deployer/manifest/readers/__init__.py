"""Turn a schema-checked, interpolated tree into the typed model, checking what the schema
cannot: formats (ports, durations, images), references between services, conflicts, and
the safety policy. Written defensively: a value of the wrong type was already reported by
the schema and is skipped here, so every problem is reported once and nothing crashes.

``core.Builder`` holds the problems and reads the top level; each section has its readers:

- ``service``: one service, as a table of key readers (image and build first),
- ``compose_keys``: the container keys compose has beyond the first release's,
- ``deploy``: ``deploy:`` (replicas, resources, update_config, restart_policy, placement),
- ``environment``: ``environment:`` and ``env_file:``,
- ``volumes`` and ``network``: mounts, ports, networks, extra hosts,
- ``security``: the safety policy (privileged, host namespaces, capabilities, devices),
- ``routes``: the edge proxy's routes,
- ``top``: top-level volumes, networks and the environment,
- ``pipeline``: tasks, rollout, registries, gitlab and notify,
- ``checks``: the checks across services.

Relative files (bind mounts, configs, secrets, ``build:``) are read by
``deployer.manifest.repofiles``.
"""
