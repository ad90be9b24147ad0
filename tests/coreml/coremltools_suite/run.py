"""Run coremltools' TF/Keras frontend op tests with tfship's CoreML evaluator as the predict backend.

    .venv/bin/python tests/coreml/coremltools_suite/run.py --per-class 8 --out /tmp/cmlsuite
    .venv/bin/python tests/coreml/coremltools_suite/run.py --select tests/coreml/coremltools_suite/ci_subset.txt --out /tmp/ci
    .venv/bin/python tests/coreml/coremltools_suite/run.py --table /tmp/after/outcomes.jsonl --before /tmp/before/outcomes.jsonl

Without ``--select`` it lists every test of ``families.MODULES`` (stable IDs, see ``plugin.stable_id``),
keeps the image-model families of ``families.FAMILIES`` over both backends (neuralnetwork fp32,
mlprogram fp16), and samples at most ``--per-class`` tests per test class and backend (a fixed,
hash-ordered sample: the same IDs every run). The tests run in one pytest process with
``TF_USE_LEGACY_KERAS=1`` (coremltools converts tf-keras models, not Keras 3 ones) and write
``outcomes.jsonl``; the table of outcome counts per family and backend goes to stdout and
``table.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from coremltools_suite.families import BACKENDS, MODULES, backend_of, family_of  # noqa: E402

OUTCOMES = ("pass", "numeric-fail", "unsupported-op", "crash", "not-convertible", "skipped", "no-prediction")


def _pytest(args: list[str], out: Path, timeout_s: int, modules: tuple[str, ...] = MODULES) -> int:
    ini = out / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")  # keep the repo's pytest settings out
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(out), "-p", "no:cacheprovider",
           "-p", "coremltools_suite.plugin", "-q", "-o", f"timeout={timeout_s}", "--pyargs", *modules, *args]
    with open(out / "pytest.log", "a", encoding="utf-8") as log:
        return subprocess.run(cmd, cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def list_tests(out: Path) -> list[str]:
    listing = out / "all_ids.txt"
    if not listing.exists():
        _pytest(["--collect-only", f"--coremlsuite-list={listing}"], out, 60)
    return listing.read_text(encoding="utf-8").splitlines()


def sample(ids: list[str], per_class: int) -> list[str]:
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for sid in ids:
        fam, backend = family_of(sid), backend_of(sid)
        if fam is None or backend is None:
            continue
        groups[(fam, sid.split("::")[1], backend)].append(sid)
    chosen: list[str] = []
    for key in sorted(groups):
        ranked = sorted(groups[key], key=lambda s: hashlib.sha1(s.encode()).hexdigest())
        chosen.extend(ranked[:per_class])
    return chosen


def load_outcomes(path: Path) -> dict[str, dict]:
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            rows[rec["id"]] = rec
    return rows


def table(outcomes: dict[str, dict], before: dict[str, dict] | None = None) -> str:
    """Markdown: per family and backend, counts of each outcome (``before -> after`` with ``before``)."""
    def counts(rows: dict[str, dict]) -> dict[tuple[str, str], Counter]:
        c: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for sid, rec in rows.items():
            c[(family_of(sid) or "?", backend_of(sid) or "?")][rec["outcome"]] += 1
            c[("**total**", backend_of(sid) or "?")][rec["outcome"]] += 1
        return c

    now = counts(outcomes)
    then = counts({k: v for k, v in (before or {}).items() if k in outcomes}) if before is not None else None
    cols = [o for o in OUTCOMES if any(c[o] for c in now.values()) or (then and any(c[o] for c in then.values()))]
    lines = ["| family | backend | tests | " + " | ".join(cols) + " |", "|" + " --- |" * (3 + len(cols))]
    for fam, backend in sorted(now, key=lambda k: (k[0] == "**total**", k)):
        c = now[(fam, backend)]
        cells = []
        for o in cols:
            cells.append(f"{then[(fam, backend)][o]} → {c[o]}" if then is not None else str(c[o]))
        lines.append(f"| {fam} | {backend} | {sum(c.values())} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def blockers(outcomes: dict[str, dict]) -> str:
    """Which ops block how many tests, and the crash / numeric-fail messages, most frequent first."""
    ops = Counter((backend_of(s), r["op"]) for s, r in outcomes.items() if r["outcome"] == "unsupported-op")
    lines = [f"- unsupported {b} `{op}`: {n}" for (b, op), n in ops.most_common()]
    for kind in ("crash", "numeric-fail", "not-convertible"):
        msgs = Counter(r["message"][:160] for r in outcomes.values() if r["outcome"] == kind)
        lines += [f"- {kind} ×{n}: {m}" for m, n in msgs.most_common(12)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/coremltools_suite"))
    ap.add_argument("--per-class", type=int, default=8)
    ap.add_argument("--select", type=Path, help="file of stable test IDs (instead of sampling)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per test")
    ap.add_argument("--table", type=Path, help="only print the table of this outcomes.jsonl")
    ap.add_argument("--before", type=Path, help="outcomes.jsonl of an earlier run, shown as before -> after")
    args = ap.parse_args(argv)
    before = load_outcomes(args.before) if args.before else None
    if args.table:
        rows = load_outcomes(args.table)
        print(table(rows, before) + "\n\n" + blockers(rows))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    ids = [l for l in args.select.read_text(encoding="utf-8").splitlines() if l.strip()] if args.select else None
    if ids is None:
        ids = sample(list_tests(args.out), args.per_class)
    selection = args.out / "selected.txt"
    selection.write_text("\n".join(ids) + "\n", encoding="utf-8")
    log = args.out / "outcomes.jsonl"
    log.unlink(missing_ok=True)
    # Collect only the modules the selection names: collecting all three takes ~13 s.
    modules = tuple(m for m in MODULES if any(i.startswith(m.rsplit(".", 1)[-1] + "::") for i in ids))
    _pytest([f"--coremlsuite-select={selection}", f"--coremlsuite-log={log}"], args.out, args.timeout, modules)
    rows = load_outcomes(log) if log.exists() else {}
    missing = [i for i in ids if i not in rows]
    text = table(rows, before) + "\n\n" + blockers(rows)
    if missing:
        text += f"\n\n{len(missing)} selected tests did not run (not collected?): {missing[:5]}"
    (args.out / "table.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"\n{len(rows)} tests over {len(BACKENDS)} backends; outcomes in {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
