"""python -m bench [part ...] [--n N]: run the benchmark parts (all when none is named).

Each part is a module of this package with `run(n) -> dict`; results are printed and written
to bench/results/<part>.json, and together to bench/results/latest.md and latest.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import agreements, api, imports, pages, report, scoring

PARTS = {
    "agreements": agreements.run,
    "api": api.run,
    "imports": imports.run,
    "scoring": scoring.run,
    "pages": pages.run,
}
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("parts", nargs="*", metavar="part",
                        help=f"one of: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--n", type=int, default=10, help="repetitions per measurement")
    args = parser.parse_args(argv)
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    RESULTS.mkdir(exist_ok=True)
    sections = {}
    for name in args.parts or list(PARTS):
        print(f"== {name}")
        result = PARTS[name](args.n)
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        sections[name] = result
    report.write(sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
