"""Docker Swarm as the engine of an environment (``environments.<name>.engine: swarm``).

    environments:
      production:
        engine: swarm
        hosts: [ssh://deploy@manager-1, ssh://deploy@manager-2]   # first manager that answers
    services:
      web:
        image: registry.example.com/shop/web:${CI_COMMIT_SHORT_SHA}
        ports: ["8080"]               # host mode: each task gets a port on its node
        deploy:
          replicas: 3
          update_config: {parallelism: 1, delay: 2s, order: start-first, monitor: 10s}

What it does:

- Each service becomes the Swarm service ``<app>_<service>`` with the labels of
  ``docker stack deploy`` (``com.docker.stack.namespace=<app>``), on the overlay network
  ``<app>_default`` (attachable) or the manifest's networks; named volumes are
  ``<app>_<volume>``. The image is pinned to the digest resolved for this deploy.
- Updates are Swarm's rolling updates: ``update_config`` maps to Swarm's (parallelism 0 =
  all at once, delay, order — stop-first when a fixed host port is published —, monitor
  — 0 means ``rollout.healthy_after`` —, failure
  action rollback by default). The deployer waits for Swarm, with a deadline of
  ``2 * batches * (health_timeout + monitor + delay) + 10 s``: ``completed`` is success;
  ``rollback_completed``, ``rollback_paused``, ``paused``, a timeout, or tasks rejected
  again and again are failures (exit 1). Every service the run already changed is then
  put back to its previous spec (created ones are removed); if that fails, exit 5.
- ``tasks:`` run as Swarm jobs (replicated-job, one completion) on the app's networks and
  volumes, their output in the job log.
- The deploy lock and the release records are Swarm configs, readable from any manager;
  ``deployer rollback`` redeploys a recorded release's digests.
- ``deployer plan`` shows the same steps as for containers (one entry per replica slot
  is observed); ``deployer status`` shows replicas running/desired and the update state.

Not supported with Swarm (refused with the key named): ``privileged``, ``network_mode``,
``pid``, ``ipc``, and published ports bound to one address. The ingress routing mesh is
not used. CI secrets reach services as environment variables, as in container mode
(Swarm secrets are not used). One swarm holds one environment of an app.

``SwarmTarget`` is the entry point: ``connect(manifest)``, then ``observe()``,
``resolve()``, ``plan()``, ``apply(plan, log)`` and ``status()``. It holds the app's raw
calls, ``SwarmTarget.swarm`` (``api.SwarmApi``), and hands them to its parts by job:
``lock``, ``converge``, ``records`` and ``apply``. The commands reach it through
``deployer.target.swarm`` (the ``Target`` of a Swarm environment).
"""

from deployer.swarm.target import SwarmLease, SwarmTarget, raise_for_outcome

__all__ = ["SwarmLease", "SwarmTarget", "raise_for_outcome"]
