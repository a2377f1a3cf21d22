"""Serving A/B: the serving benchmark over several checkouts, in alternation.

Whether a change to the request path is worth keeping is decided by runs that alternate the
code with and without it on the same machine and data (its ratios move by about ±0.05 from
run to run, so one pair of runs proves nothing). Each checkout is a git worktree with its own
`.venv` (`make install`); each run is `benchmarks.serve_bench` of that checkout against a
prepared var dir (data and an active model, see `serve_bench --var-dir`).

    python -m benchmarks.serve_ab --rounds 3 \\
        --variant plain=/work/main:/tmp/var --variant tuned=/work/tuned:/tmp/var

prints every run's cold, warm and scored ratio to `/health/live` and, per variant, their mean,
minimum and maximum; `--json FILE` keeps the whole documents.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

RATIOS = ("cold", "warm", "scored")


def parse_variant(text: str) -> tuple[str, Path, Path]:
    """`NAME=CHECKOUT:VAR_DIR`."""
    name, _, rest = text.partition("=")
    checkout, _, var_dir = rest.partition(":")
    if not (name and checkout and var_dir):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=CHECKOUT:VAR_DIR")
    return name, Path(checkout), Path(var_dir)


def run_once(checkout: Path, var_dir: Path, extra: list[str]) -> dict[str, Any]:
    """One serving benchmark of `checkout` (its own interpreter and code) on `var_dir`."""
    python = checkout / ".venv" / "bin" / "python"
    out = subprocess.run(
        [str(python), "-m", "benchmarks.serve_bench", "--var-dir", str(var_dir), *extra],
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    document: dict[str, Any] = json.loads(out)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", action="append", type=parse_variant, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every run's document here")
    args, extra = parser.parse_known_args(argv)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in args.variant}
    for round_number in range(1, args.rounds + 1):
        for name, checkout, var_dir in args.variant:
            document = run_once(checkout, var_dir, extra)
            runs[name].append(document)
            ratios = document["ratios"]
            print(
                f"round {round_number} {name}: "
                + ", ".join(f"{key} {ratios[key]:.3f}" for key in RATIOS)
                + f", errors {document['errors']}",
                flush=True,
            )
    print("\nvariant  " + "  ".join(f"{key} mean [min, max]" for key in RATIOS))
    for name, documents in runs.items():
        cells = []
        for key in RATIOS:
            values = [d["ratios"][key] for d in documents]
            cells.append(f"{statistics.mean(values):.3f} [{min(values):.3f}, {max(values):.3f}]")
        print(f"{name}  " + "  ".join(cells))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
