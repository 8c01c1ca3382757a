"""The targets of the benchmarks of this run, each met or missed with its measured figure.

    .venv/bin/python -m bench.summary            # print the table and write it to docs/benchmarks.md
    .venv/bin/python -m bench.summary --reset    # forget the targets recorded so far (the start of a run)

Each benchmark records what it measured against its targets in var/bench/targets.json when it finishes; `make
bench` clears that file first and runs this last, so the table holds the figures of that run only.
"""

from __future__ import annotations

import argparse
import json

from bench.harness import TARGETS, table, write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reset", action="store_true", help="forget the targets recorded so far")
    args = parser.parse_args()
    if args.reset:
        TARGETS.unlink(missing_ok=True)
        return
    runs = json.loads(TARGETS.read_text()) if TARGETS.exists() else {}
    if not runs:
        raise SystemExit(f"no benchmark has recorded targets in {TARGETS} yet")
    rows = [
        [
            t["name"],
            t["target"],
            t["measured"],
            "met" if t["met"] else "**missed**",
            f"`bench.{name.replace('-', '_')}`",
        ]
        for name, run in runs.items()
        for t in run["targets"]
    ]
    missed = sum(1 for run in runs.values() for t in run["targets"] if not t["met"])
    text = table(rows, ["target", "wanted", "measured", "result", "benchmark"])
    print("\n" + text + f"\n\n{len(rows) - missed} of {len(rows)} targets met.")
    commands = "\n".join(f"- `{run['command']}` ({run['at']})" for run in runs.values())
    write_section(
        "summary",
        "Summary: targets met and missed",
        ".venv/bin/python -m bench.summary",
        f"{text}\n\n{len(rows) - missed} of {len(rows)} targets met, measured by:\n\n{commands}\n",
    )


if __name__ == "__main__":
    main()
