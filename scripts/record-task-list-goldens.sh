#!/usr/bin/env bash
# Record the golden outputs of the task-list stage from the reference script.
#
# Usage: scripts/record-task-list-goldens.sh <path/to/generate_successful_task_list.py>
#
# The reference script (AutoElicit meta_analysis, Python 3 stdlib only) is not
# part of this repository; extract it from a checkout, e.g.
#   git -C <AutoElicit repo> show HEAD:meta_analysis/generate_successful_task_list.py > /tmp/ref.py
#
# For every case in test/fixtures/task-list/cases.json this copies the case's
# tree to a temporary folder, runs the reference there (from <tree>/<cwd>, with
# the case's arguments and --output), and writes the output with
# metadata.generated_at set to null to test/fixtures/task-list/golden/<case>.json,
# formatted as the reference formats it (json.dumps, indent 4).
#
# Two things are controlled so that the goldens are reproducible:
# - directory listings are sorted by name (Path.iterdir is wrapped before the
#   script runs); the reference itself uses file-system order, ours is sorted,
#   so the goldens show the reference's behaviour on a sorted listing;
# - PYTHONUTF8=1, so files are read as UTF-8 whatever the locale.
#
# Crash cases: each offender alone must make the reference fail with a
# traceback (checked); the golden is recorded with all offenders fixed (removed,
# or replaced by another file of the tree). The exception line of each crash is
# written to golden/crashes.json.
set -euo pipefail

if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 <path/to/generate_successful_task_list.py>" >&2
  exit 2
fi
REFERENCE="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
FIXTURES="$(cd "$(dirname "$0")/.." && pwd)/test/fixtures/task-list"

PYTHONUTF8=1 python3 - "$REFERENCE" "$FIXTURES" <<'PY'
import json
import os
import shutil
import subprocess
import sys
import tempfile

reference, fixtures = sys.argv[1], sys.argv[2]
cases = json.load(open(os.path.join(fixtures, "cases.json"), encoding="utf-8"))["cases"]
golden_dir = os.path.join(fixtures, "golden")
os.makedirs(golden_dir, exist_ok=True)

# Runs the script given as first argument with Path.iterdir sorted by name.
SORTED_LISTING = (
    "import pathlib, runpy, sys\n"
    "_plain_iterdir = pathlib.Path.iterdir\n"
    "pathlib.Path.iterdir = lambda self: iter(sorted(_plain_iterdir(self), key=lambda p: p.name))\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def run_reference(case, fixed):
    """Run on a copy of the case's tree with the offenders in `fixed` fixed; return (process, output or None)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "tree")
        shutil.copytree(os.path.join(fixtures, "trees", case["tree"]), tree, symlinks=True)
        for offender in fixed:
            target = os.path.join(tree, offender["path"])
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            else:
                os.remove(target)
            if "replace_with" in offender:
                shutil.copyfile(os.path.join(tree, offender["replace_with"]), target)
        out = os.path.join(tmp, "out.json")
        argv = [sys.executable, "-c", SORTED_LISTING, reference]
        for key, value in case["args"].items():
            argv += [f"--{key}", value]
        argv += ["--output", out]
        proc = subprocess.run(argv, cwd=os.path.join(tree, case.get("cwd", ".")), capture_output=True, text=True)
        data = None
        if proc.returncode == 0:
            with open(out, encoding="utf-8") as f:
                data = json.load(f)
        return proc, data


crashes = {}
for case in cases:
    offenders = case.get("crash", {}).get("offenders", [])
    for i, offender in enumerate(offenders):
        others = offenders[:i] + offenders[i + 1:]
        proc, _ = run_reference(case, others)
        if proc.returncode == 0 or "Traceback" not in proc.stderr:
            sys.exit(f"{case['name']}: expected the reference to crash on {offender['path']}")
        last = proc.stderr.strip().splitlines()[-1]
        crashes.setdefault(case["name"], []).append({"offender": offender["path"], "error": last})
    proc, data = run_reference(case, offenders)
    if data is None:
        sys.exit(f"{case['name']}: the reference failed:\n{proc.stderr}")
    data["metadata"]["generated_at"] = None
    with open(os.path.join(golden_dir, case["name"] + ".json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=4))
    print(f"{case['name']}: {data['metadata']['total_successful_runs']} runs" + (" (crash case)" if offenders else ""))

with open(os.path.join(golden_dir, "crashes.json"), "w", encoding="utf-8") as f:
    f.write(json.dumps(crashes, indent=2) + "\n")
PY
