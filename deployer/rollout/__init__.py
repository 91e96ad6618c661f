"""Apply a plan to one or more hosts: lock, pull, tasks, health-gated rollout, rollback.

Works through ``deployer.engine.HostEngine`` only, so the same code drives real Docker
hosts and the recording fake of the unit tests. The order of a deploy:

1. lock every host, in sorted order (two deploys sharing hosts cannot deadlock);
2. pull every image on every host (nothing has changed if a pull fails);
3. before-deploy tasks (on the first host); a failure changes nothing;
4. hosts in batches (a count or a percentage; hosts of a batch in parallel; a canary
   first batch of one host that must stay healthy for a while), services wave by wave,
   replicas ``parallelism`` at a time: start-first (new beside old, healthy, old out of
   the aliases, drain, stop) or stop-first (fixed host ports);
5. after-deploy tasks; then the release is recorded on every host, and retention runs.

Every change is journalled with its undo. Any failure stops the rollout and undoes the
journal of every host this run touched, newest first: the fleet never ends split
between versions. Locks are released at the end, also on failure.

The parts, by job: ``state`` (the run's inputs, job log sections, step records, each
host's undo journal), ``locks`` (lock, renew, release), ``prepare`` (leftovers, pulls,
networks and volumes, tasks), ``fleet`` (batches, canary, waves, each service's replicas),
``strategies`` (start-first, stop-first, the switch, the watch after it), ``record`` (the
release record, retention), ``undo`` (the rollback of every touched host), ``run`` (the
phases in order).
"""

from deployer.releases import new_release_id
from deployer.report.log import PrintLog
from deployer.rollout.fleet import batches
from deployer.rollout.run import Rollout

__all__ = ["PrintLog", "Rollout", "batches", "new_release_id"]
