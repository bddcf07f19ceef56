"""`make bench` / `python -m bench [NAME ...]`: run the benchmarks one after another.

Each benchmark starts the parts of the stack it needs, measures its contenders side by side in one run
and reports ratios against a baseline measured in that same run (and the absolute figures with the
machine they came from) to stdout and to bench/results/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = {
    "registry": [sys.executable, str(HERE / "registry" / "bench_registry.py")],
    "runtime": [sys.executable, "-m", "bench.runtime"],
    "e2e": [sys.executable, "-m", "bench.e2e"],
    "recon": [sys.executable, "-m", "bench.recon"],
    "recon-detect": [sys.executable, "-m", "bench.recon.detect"],
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for i, name in enumerate(names, 1):
        print(f"== [{i}/{len(names)}] bench {name}", flush=True)
        if subprocess.run(BENCHMARKS[name], cwd=HERE.parent).returncode != 0:
            failed.append(name)
    print(f"== {len(names) - len(failed)} benchmark(s) ran, {len(failed)} failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
