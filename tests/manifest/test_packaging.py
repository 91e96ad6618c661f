"""The schema ships inside the package (editable install and built wheel), and the cheap
commands never import the Docker or GitLab SDKs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from deployer.manifest.schema import SCHEMA_FILE, schema

ROOT = Path(__file__).resolve().parents[2]


def test_schema_is_package_data_and_a_valid_2020_12_schema() -> None:
    import importlib.resources

    import jsonschema

    text = importlib.resources.files("deployer.schemas").joinpath(SCHEMA_FILE).read_text()
    data = json.loads(text)
    assert data == schema()
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(data)
    # editors complete from titles/descriptions: every service key is described
    service = data["$defs"]["service"]["properties"]
    undocumented = [k for k, v in service.items() if "description" not in v and "$ref" not in v]
    assert len(undocumented) <= 6, undocumented


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=ROOT,
    )


CHECK_MODULES = """
import sys
from deployer.cli import main
try:
    code = main({argv!r})
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("docker", "gitlab", "paramiko"))
print(code, heavy)
"""


def test_version_does_not_import_docker_or_gitlab() -> None:
    proc = _run(CHECK_MODULES.format(argv=["--version"]))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 []"


def test_validate_does_not_import_docker_or_gitlab() -> None:
    path = str(ROOT / "tests/manifest/corpus/valid/minimal.yml")
    proc = _run(CHECK_MODULES.format(argv=["validate", "-f", path]))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 []"


def test_built_wheel_ships_the_schema_and_validates(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    if not (src / "README.md").exists():
        (src / "README.md").write_text("deployer\n")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "deployer", src / "deployer", ignore=ignore)
    shutil.copytree(ROOT / "schemas", src / "schemas", ignore=ignore)
    out = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    (wheel,) = out.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert f"deployer/schemas/{SCHEMA_FILE}" in names
    # every module of the tree ships (a package missing from pyproject's list would not)
    tree = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "deployer").rglob("*.py")
        if "__pycache__" not in p.parts
    )
    assert [m for m in tree if m not in names] == []
    # import the package from the wheel itself (zipimport): importlib.resources must work
    code = (
        "import deployer, sys\n"
        "from deployer.manifest import check_manifest\n"
        f"r = check_manifest({str(ROOT / 'tests/manifest/corpus/invalid/rollout_typo.yml')!r},"
        " None, {})\n"
        "print(deployer.__file__)\n"
        "print([p.path for p in r.problems])\n"
    )
    # -S: no site-packages processing, so the development (editable) install is not seen;
    # the dependencies come from site-packages placed after the wheel on the path
    site = sysconfig.get_paths()["purelib"]
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": f"{wheel}:{site}", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    where, paths = proc.stdout.splitlines()
    assert where.startswith(str(wheel))
    assert paths == "['rollout.health_timout']"


EDITOR_EXCEPTIONS = {"environments_many.yml"}  # `replicas: "${REPLICAS}"`: cast after interpolation


def test_valid_corpus_passes_the_raw_schema_as_an_editor_sees_it() -> None:
    import jsonschema
    import yaml

    validator = jsonschema.Draft202012Validator(schema())
    for path in sorted((ROOT / "tests/manifest/corpus/valid").glob("*.yml")):
        if path.name in EDITOR_EXCEPTIONS:
            continue
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert not errors, (path.name, errors)
