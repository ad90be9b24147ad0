"""Train each architecture with its defaults on the full data; print and record accuracy and wall time.

    python benchmarks/train_bench.py [--archs softmax,mlp,cnn] [--out runs/bench] [--json FILE]

Targets (issue #2): cnn >= 99.2% test accuracy in <= 10 minutes; mlp >= 98.0%; softmax >= 92.0%.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

TARGETS = {"softmax": (0.920, None), "mlp": (0.980, None), "cnn": (0.992, 600.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="softmax,mlp,cnn")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--json", type=Path, default=Path("runs/bench/train_bench.json"))
    args = parser.parse_args()

    from tfship.train.trainer import TrainConfig, train

    rows = []
    for arch in args.archs.split(","):
        started = time.perf_counter()
        result = train(TrainConfig(arch=arch, out=args.out / arch))
        wall = time.perf_counter() - started
        target_acc, target_s = TARGETS[arch]
        ok = result.test_accuracy >= target_acc and (target_s is None or result.seconds <= target_s)
        rows.append({"arch": arch, "test_accuracy": result.test_accuracy, "train_seconds": round(result.seconds, 1),
                     "wall_seconds": round(wall, 1), "target_accuracy": target_acc, "target_seconds": target_s,
                     "meets_target": ok})
        print(f"{arch:8s} accuracy {result.test_accuracy:.4f}  fit {result.seconds:6.1f} s  wall {wall:6.1f} s  "
              f"{'meets' if ok else 'MISSES'} target")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
