"""One run of the container rollout, phase by phase (see the package's docstring)."""

from __future__ import annotations

from deployer.errors import (
    Blocked,
    DeployerError,
    DeployFailed,
    InvalidInput,
    PlanOutdated,
    Unreachable,
)
from deployer.plan import Observed
from deployer.proxy.retire import retire_routes
from deployer.result import DeployResult, Outcome
from deployer.rollout import locks, prepare, record
from deployer.rollout.fleet import roll_fleet
from deployer.rollout.state import RunState
from deployer.rollout.undo import rollback_all


class Rollout(RunState):
    """One deploy (or rollback) of ``plan`` to ``hosts``. Call ``run()`` once."""

    def run(self) -> DeployResult:
        """Apply the plan. The result says what happened; ``self.error`` what to exit with."""
        leases = locks.held(self)
        try:
            locks.lock_all(self, leases)
            self._check_current()
            if self.edge is not None:
                self.edge.claim()
            prepare.cleanup(self)
            if not any(s.changes for h in self.plan.hosts for s in h.steps):
                if self.edge is not None:
                    self.edge.prepare(self.observed)
                self._retire_routes()
                self.line("nothing to do: every service already runs what the manifest says")
                self.result.outcome = Outcome.NOTHING_TO_DO
                return self.result
            prepare.pull_all(self)
            self.check_cancel()
            prepare.infrastructure(self)
            if self.edge is not None:
                self.edge.prepare(self.observed)
            prepare.tasks(self, "before-deploy")
            roll_fleet(self)
            prepare.tasks(self, "after-deploy")
            self.check_cancel()
            self._retire_routes()
            record.finish(self)
        except Blocked as e:
            self._fail_early(e, Outcome.BLOCKED)
        except Unreachable as e:
            if self.touched():
                rollback_all(self, e)
            else:
                self._fail_early(e, Outcome.UNREACHABLE)
        except InvalidInput as e:
            self._fail_early(e, Outcome.INVALID)
        except DeployerError as e:
            rollback_all(self, e)
        except BaseException as e:
            # A bug or an interrupt in the middle: undo what this run changed, then let it
            # propagate (the CLI reports a bug with its traceback).
            if self.touched():
                rollback_all(self, DeployFailed(f"internal error: {e!r}"))
            raise
        finally:
            leases.release()
            self.result.seconds = round(self.wall() - self.result.started_at, 3)
        return self.result

    def _check_current(self) -> None:
        """A run that may have waited for the lock (``--wait-lock``) planned against what
        ran before the deploy it waited for: that deploy replaced the containers the plan
        names (applying the old plan failed on "No such container" and rolled back), or
        already did what this plan would. When the hosts' containers are no longer those
        the plan saw, stop before any change (the deploy command plans again)."""
        if self.wait_lock <= 0 or self.observe_again is None:
            return
        now = {o.host: _shape(o) for o in self.observe_again()}
        if any(now.get(h) != _shape(self.observed.get(h)) for h in self.order):
            raise PlanOutdated(
                f"the containers of {self.manifest.app}/{self.manifest.environment.name} "
                "changed while this run waited for the lock (another deploy ran): the plan "
                "describes what ran before",
                hint="run it again: its plan is made from what runs now",
            )

    def _retire_routes(self) -> None:
        """A deploy that succeeded takes away the edge proxy's routes of services that are
        no longer public (a rollback or restart changes no route)."""
        if self.kind != "deploy":
            return
        try:
            retire_routes(self.manifest, self.hosts, self.line, self.context.holder)
        except DeployerError as e:  # the deploy itself succeeded: not a reason to undo it
            self.line(f"warning: old edge proxy routes left in place: {e.message}")

    def _fail_early(self, e: DeployerError, outcome: Outcome) -> None:
        self.result.outcome = outcome
        self.result.error = e.message
        self.error = e
        self.line(f"stopped before any change: {e.message}")


def _shape(observed: Observed | None) -> frozenset[str]:
    """The containers of a host a plan is made of, by id (not their state: a container
    restarting by its policy is not another deploy)."""
    if observed is None:
        return frozenset()
    return frozenset([c.id for c in observed.containers] + [c.id for c in observed.leftovers])
