"""Wall time of export-all for a run, all formats, including verification on the 10k test images.

    python benchmarks/export_bench.py --model runs/cnn [--out /tmp/export-bench] [--json FILE]

Goal (issue #3): <= 60 s on this 2-core machine, verification included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("runs/cnn"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench/exports"))
    parser.add_argument("--json", type=Path, default=Path("runs/bench/export_bench.json"))
    args = parser.parse_args()

    # A fresh process, as a user runs it: the TensorFlow import is part of the cost.
    cmd = [sys.executable, "-m", "tfship.cli", "export", "--model", str(args.model), "--out", str(args.out),
           "--coreml-name", "MNISTClassifier"]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(done.returncode)
    manifest = json.loads((args.out / "manifest.json").read_text())
    steps = [f"{a['path']}: {a['status']}, export {a.get('export_seconds', 0):.1f} s" for a in manifest["artifacts"]]
    result = {"cpus": os.cpu_count(), "wall_seconds": round(wall, 1), "steps": steps,
              "artifacts": len(manifest["artifacts"]), "parity_passed": manifest["parity"]["passed"],
              "goal_seconds": 60, "meets_goal": wall <= 60}
    print(f"export-all + verify: {wall:.1f} s wall for {result['artifacts']} artifacts "
          f"({'meets' if wall <= 60 else 'MISSES'} the 60 s goal)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
