"""Command line: argument parsing, wiring, and the one top-level error handler.

Exit codes (also in the README):
  0  success, or nothing to do
  1  deploy failed and was rolled back (hosts consistent)
  2  invalid input: manifest, arguments, variables
  3  cannot reach or authenticate to a host, registry or GitLab
  4  blocked: lock held by another deploy, deploy freeze, hold label
  5  deploy failed and the rollback failed too: a human must look
  6  `down` removed the environment, but an engine kept a network it names
  10 `plan --detailed-exitcode` only: there are changes
  70 internal error (a bug): the only case that prints a traceback

Heavy modules (docker, gitlab) are imported only inside the subcommand that needs
them, so `deployer --version` and `deployer validate` stay fast.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import importlib
import io
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any, BinaryIO, NoReturn, TextIO, cast

from deployer import __version__
from deployer.errors import EXIT_INTERNAL, EXIT_INVALID, DeployerError
from deployer.requests import REQUESTS, Request

COMMANDS = {
    "validate": "check the manifest and report every problem with its file, line and key",
    "plan": "show what a deploy would change on each host, changing nothing",
    "deploy": "apply the plan: pull, run tasks, roll out health-gated, roll back on failure",
    "rollback": "redeploy the previous (or a named) release's exact image digests",
    "status": "show what runs where: release, digest, commit, MR, health, uptime",
    "logs": "every replica's logs on every host, merged in time order",
    "exec": "run a command in a running replica of a service; exits with its exit code",
    "restart": "restart services: a health-gated rollout of the same image, rolled back on failure",
    "run": "a one-off container of the deployed release (a task, or --service S -- CMD)",
    "stats": "CPU, memory, network and restarts of every replica on every host",
    "events": "what happened to the app's containers (died, OOM-killed, health, ...) and when",
    "down": "remove an environment of the app from its hosts (volumes only with --volumes)",
    "build": "build (and --push) the images of the services with a compose `build:` section",
    "unlock": "break the deploy lock of a deploy that is gone (asks GitLab about its job)",
}


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so bad arguments exit 2 through our handler."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ArgumentError(f"{self.prog}: {message}", hint=f"run `{self.prog} --help`")


class ArgumentError(DeployerError):
    exit_code = EXIT_INVALID


def _common(p: argparse.ArgumentParser, *, env: bool = True) -> None:
    p.add_argument(
        "-f",
        "--file",
        default="deploy.yml",
        metavar="PATH",
        help="the deploy manifest (default: deploy.yml)",
    )
    if env:
        p.add_argument(
            "--env",
            metavar="NAME",
            help="environment of the manifest (default: CI_ENVIRONMENT_NAME, else the only one)",
        )


def _take_over(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--take-over-from",
        metavar="GROUP/PROJECT",
        help=f"{what} an environment of the app that this GitLab project (the one its "
        "refusal names) deployed: the app moves to the project of this job on purpose",
    )


def build_parser(*, split: bool = False) -> argparse.ArgumentParser:  # noqa: PLR0915
    """The whole command line (one argparse table). ``split``: the command of ``exec`` and
    ``run`` was already cut off at ``--`` (:func:`parse`), so their options may also come
    after the service or the task's name, as the docs write them."""
    parser = _Parser(
        prog="deployer",
        description="Deploy Docker images built in GitLab CI to your own Docker hosts.",
        epilog="Exit codes: 0 ok · 1 rolled back · 2 invalid input · 3 unreachable · "
        "4 blocked · 5 rollback failed · 6 down left a network · 70 bug",
    )
    parser.add_argument("--version", action="version", version=f"deployer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("validate", help=COMMANDS["validate"], description=COMMANDS["validate"])
    _common(p)
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = sub.add_parser("plan", help=COMMANDS["plan"], description=COMMANDS["plan"])
    _common(p)
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    p.add_argument("--services", metavar="A,B", help="only these services")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing would change, 10 when something would",
    )
    p.add_argument(
        "--against",
        choices=["hosts", "last-deployment"],
        default="hosts",
        help="compare with what runs on the hosts (default) or with the state the last "
        "successful deployment's report recorded (GitLab API, job token; no host contact)",
    )
    p.add_argument(
        "--artifact",
        metavar="PATH",
        default="deploy-reports/deploy-report.json",
        help="--against last-deployment: the report's path in the deploy job's artifacts",
    )
    _take_over(p, "plan the deploy of")

    p = sub.add_parser("deploy", help=COMMANDS["deploy"], description=COMMANDS["deploy"])
    _common(p)
    p.add_argument("--services", metavar="A,B", help="only these services")
    p.add_argument("--wait-lock", metavar="DURATION", help="wait this long for another deploy")
    p.add_argument("--force", action="store_true", help="deploy during a freeze or hold label")
    p.add_argument("--report-dir", metavar="DIR", default=".", help="where reports are written")
    _take_over(p, "deploy")

    p = sub.add_parser("rollback", help=COMMANDS["rollback"], description=COMMANDS["rollback"])
    _common(p)
    p.add_argument("--to", metavar="RELEASE", help="release id (default: the previous one)")
    p.add_argument("--wait-lock", metavar="DURATION", help="wait this long for another deploy")
    p.add_argument("--report-dir", metavar="DIR", default=".", help="where reports are written")
    _take_over(p, "roll back")

    p = sub.add_parser("status", help=COMMANDS["status"], description=COMMANDS["status"])
    _common(p)
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = sub.add_parser("logs", help=COMMANDS["logs"], description=COMMANDS["logs"])
    _common(p)
    p.add_argument("services", nargs="*", metavar="SERVICE", help="only these (default: all)")
    p.add_argument("--since", metavar="DURATION|TIME", help="e.g. 10m, 1h, or an ISO time")
    p.add_argument("--until", metavar="DURATION|TIME", help="e.g. 5m (ago), or an ISO time")
    p.add_argument("--tail", metavar="N", type=int, help="the last N lines of each replica")
    p.add_argument("--follow", action="store_true", help="keep printing new lines (Ctrl-C ends)")
    p.add_argument("--grep", metavar="TEXT", help="only lines containing TEXT")
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the prefixes (auto: on a terminal, never in CI)",
    )

    p = sub.add_parser("exec", help=COMMANDS["exec"], description=COMMANDS["exec"])
    _common(p)
    p.add_argument("--replica", metavar="N", type=int, help="which replica (default: the first)")
    p.add_argument("--host", metavar="HOST", help="a replica on this host (its URL or a part)")
    p.add_argument(
        "-i", "--interactive", action="store_true", help="send standard input to the command"
    )
    p.add_argument(
        "-t",
        "--tty",
        action="store_true",
        help="give the command a terminal (when attached to one) of the terminal's size",
    )
    p.add_argument("service", metavar="SERVICE")
    if not split:
        p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD...")

    p = sub.add_parser("restart", help=COMMANDS["restart"], description=COMMANDS["restart"])
    _common(p)
    p.add_argument("services", nargs="*", metavar="SERVICE", help="the services to restart")
    p.add_argument("--hard", action="store_true", help="stop each replica before its successor")
    p.add_argument("--report-dir", metavar="DIR", default=".", help="where reports are written")
    _take_over(p, "restart services of")

    p = sub.add_parser("run", help=COMMANDS["run"], description=COMMANDS["run"])
    _common(p)
    p.add_argument("--service", metavar="S", help="run CMD (after --) as this service")
    p.add_argument("task", nargs="?", metavar="TASK", help="a task of the manifest")
    _take_over(p, "run a task in")
    if not split:
        p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD...")

    p = sub.add_parser("stats", help=COMMANDS["stats"], description=COMMANDS["stats"])
    _common(p)
    p.add_argument("--watch", action="store_true", help="print it again every 5 s until Ctrl-C")
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = sub.add_parser("events", help=COMMANDS["events"], description=COMMANDS["events"])
    _common(p)
    p.add_argument("--since", metavar="DURATION|TIME", help="how far back (default: 1h)")
    p.add_argument("--until", metavar="DURATION|TIME", help="up to when (default: now)")

    p = sub.add_parser("down", help=COMMANDS["down"], description=COMMANDS["down"])
    _common(p)
    p.add_argument("--volumes", action="store_true", help="also delete the named volumes (data)")
    p.add_argument("--yes", action="store_true", help="confirm --volumes without asking")
    _take_over(p, "remove")

    p = sub.add_parser("build", help=COMMANDS["build"], description=COMMANDS["build"])
    _common(p)
    p.add_argument("--services", metavar="A,B", help="only these services")
    p.add_argument("--push", action="store_true", help="push each image after it is built")

    p = sub.add_parser("unlock", help=COMMANDS["unlock"], description=COMMANDS["unlock"])
    _common(p)
    p.add_argument(
        "--force", action="store_true", help="break the lock without asking GitLab about its job"
    )
    return parser


_SPLIT = ("exec", "run")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """``argv`` parsed. For ``exec`` and ``run`` everything after the first ``--`` is the
    command, and everything before it is options and names in any order
    (``exec web --replica 2 -- cat x``, ``run migrate --env staging``): argparse's
    REMAINDER would take the options written after the name as the command's words, and
    a task's run would drop them (``--env``) without a word. ``run`` without ``--`` runs a
    task or a one-word command, so it has no command words either."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), None)
    if command not in _SPLIT or (command == "exec" and "--" not in words):
        return _known(build_parser(), words)
    cut = words.index("--") if "--" in words else len(words)
    args = _known(build_parser(split=True), words[:cut])
    args.argv = ["--", *words[cut + 1 :]] if cut < len(words) else []
    return args


def _known(parser: argparse.ArgumentParser, words: list[str]) -> argparse.Namespace:
    """``words`` parsed; words no argument takes are refused naming the command they were
    given to (argparse names only the program: ``deployer: unrecognized arguments``)."""
    args, extra = parser.parse_known_args(words)
    if extra:
        prog = f"deployer {args.command}" if args.command else "deployer"
        raise ArgumentError(
            f"{prog}: unrecognized arguments: {' '.join(extra)}", hint=f"run `{prog} --help`"
        )
    return args


def request_of(args: argparse.Namespace) -> Request:
    """The command line as the command's typed request (lists as tuples)."""
    cls = REQUESTS[args.command]
    given = vars(args)
    values: dict[str, Any] = {
        f.name: tuple(given[f.name]) if isinstance(given[f.name], list) else given[f.name]
        for f in dataclasses.fields(cls)
        if f.name in given
    }
    return cls(**values)


class _KeepGoing(io.TextIOBase):
    """The job log's stream, which a closed reader (``deployer deploy | head``) must not
    turn into a deploy abandoned halfway: after a broken pipe, writes are dropped (once
    said on stderr) and the run goes on; the reports still record everything."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._broken = False

    @property
    def buffer(self) -> BinaryIO:
        """The binary stream under it (bytes as a command wrote them: ``exec``)."""
        return self._out.buffer

    def write(self, s: str) -> int:
        if not self._broken:
            try:
                self._out.write(s)
            except BrokenPipeError:
                self._lost()
        return len(s)

    def flush(self) -> None:
        if not self._broken:
            try:
                self._out.flush()
            except BrokenPipeError:
                self._lost()

    def _lost(self) -> None:
        self._broken = True
        with contextlib.suppress(OSError, ValueError):
            # Python's own flush at exit must not fail on the dead pipe either
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._out.fileno())
        with contextlib.suppress(OSError):
            print("note: standard output was closed; the run goes on without it", file=sys.stderr)


def masked(text: str, req: Request | None) -> str:
    """``text`` with every secret value masked, as the job log and the reports mask them.

    An error can quote what the engine, a registry or GitLab answered, and their answers
    can quote a value the deployer knows is secret (the engine's "unable to find user
    <value>"). The secrets are the services' environment values, the registry passwords,
    the webhook URLs and the tokens (:func:`deployer.report.redact.secret_values`): the
    manifest is read again for them (only on this error path; a manifest that cannot be
    read gives the job's variables alone: its problems quote it as written)."""
    from deployer.manifest.model import Manifest
    from deployer.report.redact import Redactor, secret_values

    manifest: Manifest | None = None
    file, env = getattr(req, "file", None), getattr(req, "env", None)
    if isinstance(file, str):
        from deployer.manifest import load_manifest

        try:
            manifest = load_manifest(file, env, os.environ)
        except Exception:  # noqa: BLE001 - the error being printed may be the loader's own
            manifest = None
    return Redactor(secret_values(manifest, os.environ))(text)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    if out is None:
        out = cast(TextIO, _KeepGoing(sys.stdout))
    req: Request | None = None
    try:
        args = parse(argv)
        if args.command is None:
            build_parser().print_help(out)
            return EXIT_INVALID
        module = importlib.import_module(f"deployer.commands.{args.command}")
        req = request_of(args)
        code: int = module.run(req, out)
        return code
    except DeployerError as e:
        out.flush()
        print(f"error: {masked(e.render(), req)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - the one place a bug becomes exit 70
        out.flush()
        print(masked(traceback.format_exc(), req), end="", file=sys.stderr)
        print(
            "error: internal error (a bug in the deployer). Please report it with the "
            "traceback above.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def run() -> NoReturn:
    """The ``deployer`` command: :func:`main`, then the process ends without tearing the
    interpreter down, as mypy's command does. The exit handlers run and the output is
    flushed; only the teardown of every module and the final garbage collection are
    skipped: 60-120 ms after a deploy, on every job. With a thread still running, the
    process ends the usual way (which waits for it)."""
    code = main()
    if threading.active_count() > 1:
        raise SystemExit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
