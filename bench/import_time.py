"""Import cost of `deployer --version` (python -X importtime), and proof that it imports
neither the Docker SDK nor python-gitlab. Side by side: what importing those SDKs costs,
which is what the lazy imports save on every `--version` and `validate`.

Run: .venv/bin/python bench/import_time.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.installed import compile_package

VERSION = (
    "from deployer.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
)


def importtime(code: str) -> tuple[int, list[tuple[int, str]]]:
    """The best of 3 runs of _importtime (warm caches; the machine is shared and noisy)."""
    return min((_importtime(code) for _ in range(3)), key=lambda r: r[0])


def _importtime(code: str) -> tuple[int, list[tuple[int, str]]]:
    """Total cumulative import time (us) of top-level imports, and the biggest ones."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        rows.append((int(cumulative), name))
    top = [(c, n.strip()) for c, n in rows if not n.startswith(" ")]
    return sum(c for c, _ in top), sorted(top, reverse=True)[:8]


def wall(argv: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def imported(code: str) -> list[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return proc.stdout.split()


def main() -> int:
    compile_package()  # imports from bytecode, as an installed deployer does
    total, top = importtime(VERSION)
    mods = imported(VERSION)
    heavy = [m for m in mods if m.split(".")[0] in ("docker", "gitlab", "paramiko")]
    print("deployer --version")
    print(f"  imports (-X importtime, best of 3):   {total / 1000:7.1f} ms")
    print(
        f"  wall time (median of 7 runs):        "
        f"{wall([sys.executable, '-m', 'deployer', '--version']) * 1000:7.1f} ms"
    )
    print(f"  modules loaded: {len(mods)}; docker/gitlab/paramiko among them: {heavy or 'none'}")
    print("  biggest imports:")
    for cumulative, name in top:
        print(f"    {cumulative / 1000:7.1f} ms  {name}")
    print("side by side: what --version would pay with the SDKs imported eagerly")
    for sdk in ("docker", "gitlab", "jsonschema"):
        t, _ = importtime(f"import {sdk}")
        print(f"  import {sdk:<11} {t / 1000:7.1f} ms")
    print(
        f"  python -c pass (interpreter start): "
        f"{wall([sys.executable, '-c', 'pass']) * 1000:7.1f} ms"
    )
    if heavy:
        print("FAIL: --version imported " + ", ".join(heavy))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
