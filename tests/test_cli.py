"""The CLI's contract: version, help, argument errors, exit codes, no traceback."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pytest

from deployer import __version__, errors
from deployer.cli import COMMANDS, main


def test_version_prints_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"deployer {__version__}"


def test_help_lists_every_subcommand() -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit):
        main(["--help"], out=out)
    # argparse prints help to sys.stdout; check through a subprocess for the real text
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "--help"], capture_output=True, text=True, check=True
    )
    for name in COMMANDS:
        assert name in proc.stdout
    assert "Exit codes" in proc.stdout


def test_no_command_prints_help_and_exits_2() -> None:
    out = io.StringIO()
    assert main([], out=out) == errors.EXIT_INVALID
    assert "usage: deployer" in out.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["plan", "--format", "yaml"],
        ["validate", "--no-such-flag"],
        ["deploy", "--env"],
    ],
)
def test_bad_arguments_exit_2_without_traceback(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == errors.EXIT_INVALID
    err = capsys.readouterr().err
    assert err.startswith("error: deployer")
    assert "Traceback" not in err
    assert "fix: run `deployer" in err


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["validate", "--no-such-flag"], "deployer validate"),
        (["deploy", "--env", "prod", "extra"], "deployer deploy"),
        (["exec", "web", "--bogus", "--", "sh"], "deployer exec"),
        (["--bogus"], "deployer"),
    ],
)
def test_an_unknown_argument_names_its_command(
    argv: list[str], prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said `deployer: unrecognized arguments` and `run deployer --help`, whatever the
    command: the help that lists the command's options is the command's."""
    assert main(argv) == errors.EXIT_INVALID
    err = capsys.readouterr().err
    assert err.startswith(f"error: {prog}: unrecognized arguments: "), err
    assert f"fix: run `{prog} --help`" in err, err


class _RaisingCommand:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def run(self, args: object, out: object) -> int:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.Blocked("lock held by job 42", hint="wait for it or use --wait-lock"), 4),
        (errors.Unreachable("ssh://a: connection refused", hint="check the host"), 3),
        (errors.DeployFailed("web unhealthy; rolled back"), 1),
        (errors.RollbackFailed("rollback of web failed"), 5),
        (errors.InvalidInput("deploy.yml:3:1: app: missing"), 2),
    ],
)
def test_user_errors_exit_with_their_code_and_no_traceback(
    exc: errors.DeployerError,
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import deployer.cli as cli

    monkeypatch.setattr(cli.importlib, "import_module", lambda name: _RaisingCommand(exc))
    assert main(["status"]) == code
    err = capsys.readouterr().err
    assert err.startswith(f"error: {exc.message}")
    if exc.hint:
        assert f"fix: {exc.hint}" in err
    assert "Traceback" not in err


def test_a_bug_exits_70_with_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import deployer.cli as cli

    monkeypatch.setattr(
        cli.importlib, "import_module", lambda name: _RaisingCommand(KeyError("oops"))
    )
    assert main(["status"]) == errors.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "internal error" in err


def test_exit_codes_are_distinct() -> None:
    codes = [
        errors.EXIT_OK,
        errors.EXIT_ROLLED_BACK,
        errors.EXIT_INVALID,
        errors.EXIT_UNREACHABLE,
        errors.EXIT_BLOCKED,
        errors.EXIT_ROLLBACK_FAILED,
        errors.EXIT_LEFT_BEHIND,
        errors.EXIT_CHANGES,
        errors.EXIT_INTERNAL,
    ]
    assert len(set(codes)) == len(codes)
    assert errors.DeployFailed("x").exit_code == 1
    assert errors.RollbackFailed("x").exit_code == 5
    assert errors.LeftBehind("x").exit_code == 6
    assert errors.Unreachable("x").exit_code == 3


def test_version_does_not_import_docker_or_gitlab() -> None:
    code = (
        "import sys, deployer.cli\n"
        "try:\n    deployer.cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('docker', 'gitlab', 'requests')]\n"
        "print('IMPORTED:' + ','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "IMPORTED:\n" in proc.stdout


def test_a_closed_stdout_does_not_stop_the_run_or_print_a_traceback() -> None:
    # `deployer deploy | head`: the reader goes away; a deploy must not stop halfway
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployer", "validate", "-f", "examples/shop/deploy.yml"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has written anything
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert "standard output was closed" in err
    assert "Traceback" not in err and "Exception ignored" not in err


@pytest.mark.parametrize("kind", ["deployer error", "internal error"])
def test_an_error_quoting_a_secret_is_masked_by_the_handler(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    """Whatever an error quotes (an engine's or a registry's answer), the handler masks the
    services' environment values and the job's secret variables, in a DeployerError's
    message and in an internal error's traceback alike."""
    from deployer.commands import plan as plan_command

    env_secret, token = "svc-value-0c4b7e91d2", "registry-pass-9e2a61f0b7"
    (tmp_path / "deploy.yml").write_text(
        "app: shop\nenvironments:\n  production: {}\nservices:\n  web:\n"
        "    image: registry.example.com/shop/web:1\n"
        "    environment: {DB_URL: '${DB_URL}'}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DB_URL", env_secret)
    monkeypatch.setenv("CI_REGISTRY_PASSWORD", token)

    def fail(req: object, out: object) -> int:
        text = f"the engine said: bad value {env_secret}; login {token} refused"
        if kind == "internal error":
            raise RuntimeError(text)
        raise errors.DeployFailed(text, hint=f"check {token}")

    monkeypatch.setattr(plan_command, "run", fail)
    code = main(["plan"], out=io.StringIO())
    err = capsys.readouterr().err
    assert code == (errors.EXIT_INTERNAL if kind == "internal error" else 1), err
    assert "bad value [MASKED]; login [MASKED] refused" in err, err
    assert env_secret not in err and token not in err, err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # docs/operations.md writes the options after the service's name
        (
            ["exec", "web", "--replica", "2", "--host", "10.0.0.5", "--", "cat", "/x"],
            {"service": "web", "replica": 2, "host": "10.0.0.5", "argv": ("--", "cat", "/x")},
        ),
        (
            ["exec", "-i", "db", "--", "psql", "--", "-x"],
            {"service": "db", "interactive": True, "argv": ("--", "psql", "--", "-x")},
        ),
        (["exec", "web", "ls", "/app"], {"service": "web", "argv": ("ls", "/app")}),
        (
            ["exec", "web", "--env", "staging", "--", "sh"],
            {"service": "web", "env": "staging", "argv": ("--", "sh")},
        ),
        (["run", "migrate", "--env", "staging"], {"task": "migrate", "env": "staging", "argv": ()}),
        (
            ["run", "--service", "web", "--", "bin/rails", "db:migrate"],
            {"service": "web", "task": None, "argv": ("--", "bin/rails", "db:migrate")},
        ),
        (
            ["run", "--service", "web", "--env", "production", "--", "ls", "--env", "x"],
            {"service": "web", "env": "production", "argv": ("--", "ls", "--env", "x")},
        ),
    ],
)
def test_exec_and_run_take_their_options_anywhere_before_the_command(
    argv: list[str], expected: dict[str, object]
) -> None:
    """Without the cut at `--`, argparse gave `--replica 2 --host ...` written after the
    service to the container as the command (exit 126), and `run migrate --env staging`
    ran the task in whatever environment was the default, dropping `--env` unsaid."""
    from deployer.cli import parse, request_of

    req = request_of(parse(argv))
    for key, value in expected.items():
        assert getattr(req, key) == value, key


def test_a_task_s_run_refuses_command_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "deploy.yml"
    manifest.write_text(
        "app: uxcli\nenvironments: {production: {hosts: ['unix:///nonexistent.sock']}}\n"
        "services: {web: {image: 'registry.example.com/web:1'}}\n"
        "tasks: {migrate: {service: web, command: [bin/migrate]}}\n"
    )
    code = main(["run", "-f", str(manifest), "migrate", "--", "ls"], out=io.StringIO())
    assert code == errors.EXIT_INVALID
    assert "a task runs the command the manifest gives it" in capsys.readouterr().err
    code = main(["run", "-f", str(manifest), "migrate", "--env", "nosuch"], out=io.StringIO())
    assert code == errors.EXIT_INVALID
    assert '"nosuch", which the manifest does not define' in capsys.readouterr().err


def test_the_readme_s_command_synopsis_matches_the_parser() -> None:
    """README.md, "Commands": every command and option it shows exists, and every
    command and option of the parser is shown (one spelling of each)."""
    import re

    from deployer.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Commands", 1)[1].split("```", 2)[1]
    shown: dict[str, set[str]] = {}
    command = ""
    for line in block.splitlines():
        m = re.match(r"deployer (\S+)", line)
        if m:
            command = m.group(1)
        if command == "--version":
            continue
        if command:
            shown.setdefault(command, set()).update(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", line))
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(shown)
    for name, parser in sub.choices.items():
        options = [a.option_strings for a in parser._actions if a.option_strings]
        known = {o for strings in options for o in strings}
        assert shown[name] - {"--"} <= known, name
        for strings in options:
            if "--help" not in strings:
                assert shown[name] & set(strings), (name, strings)


def _documented_command_lines() -> list[str]:
    import re
    import shlex

    root = Path(__file__).resolve().parents[1]
    lines = []
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        fences = re.findall(r"^```(\w*)\n(.*?)^```", doc.read_text(), re.M | re.S)
        for block in (body for lang, body in fences if lang in ("", "sh")):
            for line in block.splitlines():
                if not line.startswith("deployer ") or "[" in line:  # not the synopsis
                    continue
                words = shlex.split(line, comments=True)
                if words[:1] == ["deployer"] and words[1:] != ["--version"]:
                    cut = next((i for i, w in enumerate(words) if w in ("<", ">")), len(words))
                    lines.append(shlex.join(words[1:cut]))
    return lines


@pytest.mark.parametrize("line", _documented_command_lines())
def test_a_documented_command_line_parses_as_it_reads(line: str) -> None:
    """Each `deployer ...` line of the docs' examples is a valid command line, and the
    command of exec and run is what follows `--` (not an option written after the name)."""
    import shlex

    from deployer.cli import parse, request_of

    req = request_of(parse(shlex.split(line)))
    argv = getattr(req, "argv", ())
    command = argv[1:] if argv[:1] == ("--",) else argv
    if getattr(req, "service", None) and line.split(maxsplit=1)[0] in ("exec", "run"):
        assert command, line
        assert command[0] not in {"--env", "--replica", "--host", "-i", "-t", "-f"}, line


def test_the_docs_show_command_lines() -> None:
    assert len(_documented_command_lines()) >= 20
