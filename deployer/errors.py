"""One error root, and the exit code each kind of failure gives.

Every failure the user can cause or fix is a ``DeployerError``; the CLI's single
top-level handler prints its message (never a traceback) and exits with its code.
Anything else that escapes is a bug and exits ``EXIT_INTERNAL`` with a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ROLLED_BACK = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3
EXIT_BLOCKED = 4
EXIT_ROLLBACK_FAILED = 5
EXIT_LEFT_BEHIND = 6  # `down`: all else removed; the engine kept what the message names
EXIT_CHANGES = 10  # only with `plan --detailed-exitcode`
EXIT_INTERNAL = 70


class DeployerError(Exception):
    """Root of every error that is the user's to fix or the environment's fault."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message


class InvalidInput(DeployerError):
    """Bad manifest, arguments or variables. Nothing on any host was touched."""

    exit_code = EXIT_INVALID


class Unreachable(DeployerError):
    """A host, registry or GitLab could not be reached or refused our credentials."""

    exit_code = EXIT_UNREACHABLE


class Blocked(DeployerError):
    """Another deploy holds the lock, a deploy freeze is on, or a hold label is set."""

    exit_code = EXIT_BLOCKED


class PlanOutdated(Blocked):
    """The hosts changed while the run waited for the lock (another deploy ran): its plan
    describes what ran before. Nothing was changed; ``deployer deploy`` plans again."""


class DeployFailed(DeployerError):
    """The rollout failed and every change this run made was rolled back."""

    exit_code = EXIT_ROLLED_BACK


class LeftBehind(DeployerError):
    """`down` removed everything else of the environment, but an engine kept something
    (a network another container uses, or one it refuses to remove): the message names
    it and what to run on the host."""

    exit_code = EXIT_LEFT_BEHIND


class RollbackFailed(DeployerError):
    """The rollout failed and restoring the previous state failed too: a human must look."""

    exit_code = EXIT_ROLLBACK_FAILED
