"""Docker Swarm as the engine of an environment (``environments.<name>.engine: swarm``).

``SwarmTarget`` is the entry point: ``connect(manifest)``, then ``observe()``,
``resolve()``, ``plan()``, ``apply(plan, log)`` and ``status()``.
"""

from deployer.swarm.target import SwarmLease, SwarmTarget, raise_for_outcome

__all__ = ["SwarmLease", "SwarmTarget", "raise_for_outcome"]
