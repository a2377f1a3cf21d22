"""How long a `bookrec` command takes to start: `bookrec --help`, against a bare interpreter.

    python -m benchmarks.cli_startup [--repeats 15] [--out FILE]

Every command pays this before it does anything. The floor is the same interpreter running
`pass` in the same run (the machine is shared: the ratio is the figure that travels), plus
`import typer` (what any Typer CLI pays). Runs alternate so drift hits all three alike.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, machine_info, summary

BOOKREC = Path(sys.executable).parent / "bookrec"
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import typer'": [sys.executable, "-c", "import typer"],
    "bookrec --help": [str(BOOKREC), "--help"],
}


def _seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/cli_startup.json")
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():  # warm the page cache once
        _seconds(command)
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(_seconds(command))
    results = {name: summary(values) for name, values in times.items()}
    floor = results["python -c pass"]["median"]
    report: dict[str, object] = {
        "machine": machine_info(None),
        "repeats": args.repeats,
        "seconds": results,
        "help_seconds": results["bookrec --help"]["median"],
        "help_over_bare_python": results["bookrec --help"]["median"] / floor,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for name, values in results.items():
        low, high = values["min"], values["max"]
        print(f"{name:<28} median {values['median']:.3f} s (min {low:.3f}, max {high:.3f})")
    ratio = report["help_over_bare_python"]
    print(f"bookrec --help: {report['help_seconds']:.3f} s, {ratio:.1f}x a bare interpreter")
    return report


if __name__ == "__main__":
    main()
