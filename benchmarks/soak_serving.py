"""Soak test for ``tfship serve``: a long mixed load with version swaps, memory sampled throughout.

Starts ``tfship serve --workers 2 --enable_batching`` (loopback, free ports) on a copy of a model and
sends ``--requests`` requests from ``--threads`` client threads, half REST and half gRPC, each thread on
its own connection: valid predicts mixed with the fuzzer's malformed cases (``fuzz_cases.py``). Every
``--swap-every`` requests it publishes a new version (written aside, renamed into place, as
``tfship train`` does); the server's file-system poll picks it up and unloads the old one. Meanwhile a
monitor asks GetModelStatus over fresh connections (``SO_REUSEPORT`` spreads them over both workers)
until every answer names the new version as the one AVAILABLE: the time from the rename to the first
such answer and to the last disagreeing one is recorded per swap.

Checks: zero failed valid requests (across swaps too), no 5xx / INTERNAL / UNKNOWN, RSS growth after
warm-up within ``--max-rss-growth``. Writes JSON, a Markdown summary and a PNG of the RSS curve.

    python benchmarks/soak_serving.py --requests 100000 --out docs/reliability
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_cases  # noqa: E402
import fuzz_grpc_cases  # noqa: E402
import fuzz_serving as fz  # noqa: E402

# Share of requests that are malformed (drawn from the fuzzer); the rest are valid predicts.
INVALID_SHARE = 0.3
# Disagreement probes: fresh connections per probe round (SO_REUSEPORT hashes each to a worker; with 8 the
# chance that every one lands on the same of two workers is 2^-7).
PROBES_PER_ROUND = 8


class Load:
    """The shared request counter, findings and samples of all client threads."""

    def __init__(self, total: int, rss_every: int, swap_every: int, pid: int) -> None:
        self.total, self.rss_every, self.swap_every, self.pid = total, rss_every, swap_every, pid
        self.sent = 0
        self.lock = threading.Lock()
        self.found = fz.Findings()
        self.swap_due = threading.Event()
        self.started = time.monotonic()

    def next(self) -> int | None:
        with self.lock:
            if self.sent >= self.total:
                return None
            self.sent += 1
            n = self.sent
        if n % self.rss_every == 0:
            mb = fz.rss_mb(self.pid)
            with self.lock:
                self.found.rss_mb.append((n, mb))
            print(f"{n:>7} requests  {time.monotonic() - self.started:6.0f} s  RSS {mb:6.0f} MB  "
                  f"valid failed {self.found.valid_failed}  problem kinds {len(self.found.problems)}", flush=True)
        if n % self.swap_every == 0 and n < self.total:
            self.swap_due.set()
        return n


def client(load: Load, rest_url: str, grpc_address: str, target, seed: int) -> None:
    host, port = rest_url.removeprefix("http://").rsplit(":", 1)
    rest, grpc_sender = fz.RestSender(host, int(port)), fz.GrpcSender(grpc_address)
    rng = random.Random(seed)
    try:
        while (n := load.next()) is not None:
            invalid = rng.random() < INVALID_SHARE
            if n % 2:
                case = fuzz_cases.rest_case(rng, target) if invalid else fuzz_cases.valid_rest(rng, target)
                answer = rest.send(case)
                with load.lock:
                    fz.judge_rest(case, *answer, load.found)
            else:
                case = fuzz_grpc_cases.grpc_case(rng, target) if invalid else fuzz_grpc_cases.valid_grpc(rng, target)
                answer = grpc_sender.send(case)
                with load.lock:
                    fz.judge_grpc(case, *answer, load.found)
    finally:
        rest.close()
        grpc_sender.close()


def publish_version(base: Path, version: int) -> None:
    """Copy version 1 to ``version`` aside, then rename it into place: a poller never sees half of it."""
    tmp = base / f".tmp-{version}"
    shutil.copytree(base / "1", tmp)
    os.rename(tmp, base / str(version))


def served_version(grpc_address: str, name: str) -> int | None:
    """The AVAILABLE version one fresh connection reports (None if none or several are AVAILABLE)."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    with grpc.insecure_channel(grpc_address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = name
        try:
            answer = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(req, timeout=10)
        except grpc.RpcError:
            return None
    available = [s.version for s in answer.model_version_status if s.state == 30]  # AVAILABLE
    return available[0] if len(available) == 1 else None


def watch_swap(grpc_address: str, name: str, version: int, published: float, limit: float) -> dict:
    """Probe until PROBES_PER_ROUND fresh connections in a row all report ``version``."""
    first = None
    last_other = published
    deadline = published + limit
    while time.monotonic() < deadline:
        seen = [served_version(grpc_address, name) for _ in range(PROBES_PER_ROUND)]
        now = time.monotonic()
        if version in seen and first is None:
            first = now
        if all(v == version for v in seen):
            return {"version": version, "first_new_s": round(first - published, 2),
                    "all_new_s": round(now - published, 2),
                    "disagreement_s": round(max(0.0, last_other - first), 2)}
        if first is not None:
            last_other = now
        time.sleep(0.05)
    return {"version": version, "first_new_s": None if first is None else round(first - published, 2),
            "all_new_s": None, "disagreement_s": None}


def swapper(load: Load, base: Path, grpc_address: str, name: str, poll: float, swaps: list, done: threading.Event) -> None:
    version = 1
    while not done.is_set():
        if not load.swap_due.wait(timeout=0.2):
            continue
        load.swap_due.clear()
        version += 1
        publish_version(base, version)
        result = watch_swap(grpc_address, name, version, time.monotonic(), limit=60 + 4 * poll)
        result["at_request"] = load.sent
        swaps.append(result)
        print(f"swap to version {version}: first worker {result['first_new_s']} s, all {result['all_new_s']} s "
              f"after the rename", flush=True)


def plot(rss: list, swaps: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot([n for n, _ in rss], [mb for _, mb in rss], marker="o", label="server RSS (both workers + parent)")
    for s in swaps:
        ax.axvline(s["at_request"], color="grey", lw=0.8, ls=":")
    ax.set_xlabel("requests sent (dotted: a new version published)")
    ax.set_ylabel("MB")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right")
    ax.set_title("tfship serve --workers 2 --enable_batching under a mixed soak")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="base folder with version 1 (default: an untrained CNN)")
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--swap-every", type=int, default=10_000)
    p.add_argument("--rss-every", type=int, default=5_000)
    p.add_argument("--warmup", type=int, default=10_000, help="requests before RSS growth is judged")
    p.add_argument("--max-rss-growth", type=float, default=0.10)
    p.add_argument("--poll", type=float, default=1.0, help="--file_system_poll_wait_seconds")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/soak"), help="prefix of .json, .md and .png")
    a = p.parse_args(argv)

    name = "soak"
    with tempfile.TemporaryDirectory(prefix="tfship-soak-") as scratch:
        base = Path(scratch) / "saved_model"
        if a.model:
            shutil.copytree(a.model / "1", base / "1")
        else:
            fz.untrained_model(Path(scratch))
        proc, grpc_port, rest_port = fz.start_server(
            base, name, a.workers, Path(scratch) / "server.log",
            ["--file_system_poll_wait_seconds", str(a.poll)])
        rest_url, grpc_address = f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"
        swaps: list = []
        try:
            fz.wait_available(rest_url, name, proc)
            target = fz.discover(rest_url, name)
            load = Load(a.requests, a.rss_every, a.swap_every, proc.pid)
            load.found.rss_mb.append((0, fz.rss_mb(proc.pid)))
            done = threading.Event()
            watcher = threading.Thread(target=swapper, args=(load, base, grpc_address, name, a.poll, swaps, done))
            watcher.start()
            threads = [threading.Thread(target=client, args=(load, rest_url, grpc_address, target, a.seed + i))
                       for i in range(a.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            done.set()
            watcher.join()
            seconds = time.monotonic() - load.started
            load.found.rss_mb.append((load.sent, fz.rss_mb(proc.pid)))
            alive = proc.poll() is None
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except Exception:  # noqa: BLE001 - a stuck server is killed; the report says what happened
                proc.kill()
            log_tail = (Path(scratch) / "server.log").read_text(errors="replace")[-3000:]
    return report(a, load, swaps, seconds, alive, log_tail)


def report(a, load: Load, swaps: list, seconds: float, alive: bool, log_tail: str) -> int:
    found = load.found
    rss = found.rss_mb
    after_warmup = [mb for n, mb in rss if n >= a.warmup]
    growth = (after_warmup[-1] / after_warmup[0] - 1) if len(after_warmup) >= 2 else None
    failed_swaps = [s for s in swaps if s["all_new_s"] is None]
    problems = dict(found.problems)
    if growth is not None and growth > a.max_rss_growth:
        problems[f"RSS grew {growth:.1%} after warm-up (limit {a.max_rss_growth:.0%})"] = {"count": 1, "example": {}}
    if failed_swaps:
        problems["a swap did not reach every worker"] = {"count": len(failed_swaps), "example": failed_swaps[0]}
    if not alive:
        problems["server died"] = {"count": 1, "example": {"log": log_tail}}
    result = {"requests": load.sent, "seconds": round(seconds, 1), "req_per_s": round(load.sent / seconds, 1),
              "threads": a.threads, "workers": a.workers, "invalid_share": INVALID_SHARE,
              "valid_sent": found.valid_sent, "valid_failed": found.valid_failed,
              "answers": dict(sorted(found.counts.items())), "rss_mb": rss,
              "rss_growth_after_warmup": None if growth is None else round(growth, 4),
              "swaps": swaps, "problems": problems}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rss, swaps, a.out.with_suffix(".png"))
    a.out.with_suffix(".md").write_text(markdown(result, a))
    print(markdown(result, a))
    return 1 if problems else 0


def markdown(r: dict, a) -> str:
    rows = "\n".join(f"| {s['version']} | {s['at_request']} | {s['first_new_s']} | {s['all_new_s']} | "
                     f"{s['disagreement_s']} |" for s in r["swaps"])
    rss = ", ".join(f"{n}: {mb:.0f}" for n, mb in r["rss_mb"])
    growth = "n/a" if r["rss_growth_after_warmup"] is None else f"{r['rss_growth_after_warmup']:+.1%}"
    problems = "\n".join(f"- {k}: {v['count']}x, e.g. `{json.dumps(v['example'])[:300]}`"
                         for k, v in r["problems"].items()) or "- none"
    return (f"# Soak: {r['requests']:,} requests, {r['workers']} workers, batching\n\n"
            f"`python benchmarks/soak_serving.py --requests {a.requests} --threads {a.threads} "
            f"--swap-every {a.swap_every} --poll {a.poll}`\n\n"
            f"- {r['seconds']} s, {r['req_per_s']} req/s from {r['threads']} client threads; "
            f"{r['invalid_share']:.0%} malformed\n"
            f"- valid requests: {r['valid_sent']:,} sent, **{r['valid_failed']} failed**\n"
            f"- answers: {', '.join(f'{k}: {v:,}' for k, v in r['answers'].items())}\n"
            f"- RSS (MB) by request count: {rss}; growth after warm-up ({a.warmup:,} requests): **{growth}**\n\n"
            f"| version | published at request | first worker serves it (s) | all workers (s) | "
            f"workers disagree (s) |\n| --- | --- | --- | --- | --- |\n{rows}\n\n"
            f"Problems:\n{problems}\n")


if __name__ == "__main__":
    sys.exit(main())
