"""Black-box fuzzer for ``tfship serve``: malformed REST and gRPC requests, valid ones mixed in.

Seeded (the same ``--seed`` sends the same cases), bounded in count and time, loopback only. It starts
``tfship serve --enable_batching`` on free loopback ports (or fuzzes a server you name with ``--rest`` /
``--grpc``, which must be on this machine), reads the model's predict signature from its metadata, then
sends ``--count`` REST and ``--count`` gRPC cases (``fuzz_cases.py``, ``fuzz_grpc_cases.py``). It reports, with one example
each: 5xx answers, gRPC INTERNAL / UNKNOWN / UNAVAILABLE / DEADLINE_EXCEEDED, REST errors that are not
``{"error": "..."}`` JSON, answers that leak a Python class name or traceback, valid requests that
failed, requests with no answer; and the server's RSS over the run. Exit 1 on any problem.

    python benchmarks/fuzz_serving.py --count 10000 --seed 0 --out benchmarks/fuzz_serving.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tfship import quiet  # noqa: E402

quiet.install(debug="--debug" in sys.argv)  # TensorFlow's C++ start-up lines are not this script's output
import fuzz_cases  # noqa: E402
import fuzz_grpc_cases  # noqa: E402
from fuzz_cases import GrpcCase, RestCase, Target  # noqa: E402

# A client must never see these: Python exception classes, tracebacks, repr of a class.
LEAK = re.compile(r"Traceback \(most recent|<class '|File \"[^\"]+\.py\"|\b(Value|Key|Type|Memory|Attribute|Index|"
                  r"Overflow|UnicodeDecode|UnicodeEncode|Recursion|Decode|Runtime|Assertion|ZeroDivision|"
                  r"NotImplemented|OS|Lookup|Name|Struct|Buffer)Error\b")
GRPC_PROBLEMS = {"INTERNAL", "UNKNOWN", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS"}
# A request the server accepts must be answered well within this (the biggest legal body is ~MBs).
REQUEST_TIMEOUT_S = 30.0
STANDARD_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
LIVENESS_EVERY = 250
RSS_EVERY = 1000


@dataclass
class Findings:
    counts: Counter = field(default_factory=Counter)       # "rest 400", "grpc INVALID_ARGUMENT", ...
    problems: dict = field(default_factory=dict)           # problem kind -> {"count", "example"}
    rss_mb: list = field(default_factory=list)             # (cases sent, MB)
    valid_sent: int = 0
    valid_failed: int = 0

    def problem(self, what: str, example: dict) -> None:
        entry = self.problems.setdefault(what, {"count": 0, "example": example})
        entry["count"] += 1


# ------------------------------------------------------------------------------------------ the server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def untrained_model(scratch: Path) -> Path:
    """An untrained, seeded MNIST CNN in TF Serving's layout (no data needed)."""
    import keras

    from tfship.train import models, saved_model

    keras.utils.set_random_seed(0)
    base = scratch / "saved_model"
    saved_model.save(models.build("cnn"), base)
    return base


def start_server(model: Path, name: str, workers: int, log: Path, extra: list[str]) -> tuple[subprocess.Popen, int, int]:
    grpc_port, rest_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "tfship.cli", "serve", "--model", str(model), "--model_name", name,
           "--port", str(grpc_port), "--rest_api_port", str(rest_port), "--enable_batching",
           "--workers", str(workers), *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    return proc, grpc_port, rest_port


def wait_available(rest: str, name: str, proc: subprocess.Popen | None, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"tfship serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{rest}/v1/models/{name}", timeout=2) as r:
                if any(v.get("state") == "AVAILABLE" for v in json.load(r).get("model_version_status", [])):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"model '{name}' not AVAILABLE at {rest} within {timeout:.0f} s")


def discover(rest: str, name: str) -> Target:
    """The first predict signature with one numeric input, from the server's REST metadata."""
    with urllib.request.urlopen(f"{rest}/v1/models/{name}/metadata", timeout=10) as r:
        defs = json.load(r)["metadata"]["signature_def"]["signature_def"]
    numeric = {"DT_FLOAT": 1, "DT_DOUBLE": 2, "DT_INT32": 3, "DT_UINT8": 4, "DT_INT64": 9}
    for key in sorted(defs, key=lambda k: (k != "predict_images", k != "serving_default", k)):
        inputs = defs[key].get("inputs", {})
        if len(inputs) == 1:
            (input_name, info), = inputs.items()
            if info.get("dtype") in numeric:
                dims = info.get("tensor_shape", {}).get("dim", [])
                shape = tuple(int(d.get("size", -1)) for d in dims)
                return Target(name, key, input_name, shape, numeric[info["dtype"]])
    raise RuntimeError(f"model '{name}' has no predict signature with one numeric input: {sorted(defs)}")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the --workers processes)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, AttributeError):
            continue
    return total / 1024


# ---------------------------------------------------------------------------------------- REST side

class RestSender:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn: http.client.HTTPConnection | None = None

    def send(self, case: RestCase) -> tuple[int | None, dict, bytes]:
        """(status or None when no answer came, headers, body)."""
        if case.raw is not None:
            return self._raw(case.raw)
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
            try:
                self.conn.putrequest(case.method, case.path, skip_accept_encoding=True)
                for k, v in case.headers.items():
                    self.conn.putheader(k, v)
                if case.method not in ("GET", "HEAD") or case.body:
                    self.conn.putheader("Content-Length", str(len(case.body)))
                self.conn.endheaders(case.body or None)
                resp = self.conn.getresponse()
                body = resp.read() if case.method != "HEAD" else b""
                if resp.getheader("connection", "").lower() == "close":
                    self.close()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
            except (OSError, http.client.HTTPException, UnicodeEncodeError, ValueError) as e:
                self.close()
                if isinstance(e, (UnicodeEncodeError, ValueError)):
                    return -1, {}, str(e).encode()  # http.client refused to send it: not the server's answer
                if attempt == 1:
                    return None, {}, repr(e).encode()
        return None, {}, b""

    def _raw(self, raw: bytes) -> tuple[int | None, dict, bytes]:
        with socket.create_connection((self.host, self.port), timeout=REQUEST_TIMEOUT_S) as s:
            try:
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            data = b""
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except OSError:
                pass
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        head, _, body = data.partition(b"\r\n\r\n")
        headers = dict(line.decode("latin-1").lower().split(": ", 1) for line in head.split(b"\r\n")[1:]
                       if b": " in line)
        return (int(m.group(1)) if m else 0), headers, body

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def judge_rest(case: RestCase, status: int | None, headers: dict, body: bytes, found: Findings) -> None:
    example = {"kind": case.kind, "method": case.method, "path": case.path[:200], "status": status,
               "body": body[:300].decode("utf-8", "replace"),
               "request": (case.raw or case.body)[:200].decode("utf-8", "replace")}
    if status == -1:
        found.counts["rest not sendable by http.client"] += 1
        return
    found.counts[f"rest {status}"] += 1
    if case.valid:
        found.valid_sent += 1
        if status != 200:
            found.valid_failed += 1
            found.problem("REST valid request failed", example)
    if status is None:
        found.problem("REST no answer (connection error or timeout)", example)
        return
    if status == 0:
        # Raw bytes that are not HTTP: the HTTP parser may close without a status line.
        return
    if status >= 500:
        found.problem(f"REST {status}", example)
    if LEAK.search(body.decode("utf-8", "replace")):
        found.problem("REST answer leaks a Python class name or traceback", example)
    if case.raw is not None or case.http_layer or case.method == "HEAD" or case.method not in STANDARD_METHODS:
        # The HTTP layer answered a request the API never saw (uvicorn's parser refuses methods it does
        # not know, such as "FOO" or "get", and oversized headers with a plain-text 400); HEAD has no body.
        return
    if status != 200:
        try:
            doc = json.loads(body)
            ok = isinstance(doc, dict) and set(doc) == {"error"} and isinstance(doc["error"], str)
        except ValueError:
            ok = False
        if not ok or "application/json" not in headers.get("content-type", ""):
            found.problem('REST error that is not {"error": "..."} JSON', example)


# ---------------------------------------------------------------------------------------- gRPC side

class GrpcSender:
    def __init__(self, address: str) -> None:
        import grpc

        self.grpc = grpc
        # A connection of its own (no global subchannel pool): with --workers, each lands on some worker.
        self.channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1),
                                                               ("grpc.max_send_message_length", 64 << 20),
                                                               ("grpc.max_receive_message_length", 64 << 20)])
        self.calls = {}

    def send(self, case: GrpcCase) -> tuple[str, str]:
        call = self.calls.get(case.method)
        if call is None:
            call = self.calls[case.method] = self.channel.unary_unary(case.method)  # bytes in, bytes out
        try:
            call(case.payload, timeout=REQUEST_TIMEOUT_S)
            return "OK", ""
        except self.grpc.RpcError as e:
            return e.code().name, e.details() or ""

    def close(self) -> None:
        self.channel.close()


def judge_grpc(case: GrpcCase, code: str, details: str, found: Findings) -> None:
    found.counts[f"grpc {code}"] += 1
    example = {"kind": case.kind, "method": case.method, "code": code, "details": details[:300],
               "payload_hex": case.payload[:64].hex()}
    if case.valid:
        found.valid_sent += 1
        if code != "OK":
            found.valid_failed += 1
            found.problem("gRPC valid request failed", example)
    if code in GRPC_PROBLEMS:
        found.problem(f"gRPC {code}", example)
    if LEAK.search(details):
        found.problem("gRPC details leak a Python class name or traceback", example)


# ---------------------------------------------------------------------------------------- the run

def liveness(rest: RestSender, grpc_sender: GrpcSender, rng: random.Random, t: Target, found: Findings) -> bool:
    r = fuzz_cases.valid_rest(rng, t)
    g = fuzz_grpc_cases.valid_grpc(rng, t)
    status, headers, body = rest.send(r)
    judge_rest(r, status, headers, body, found)
    code, details = grpc_sender.send(g)
    judge_grpc(g, code, details, found)
    return status == 200 and code == "OK"


def fuzz(rest_url: str, grpc_address: str, t: Target, count: int, seconds: float, seed: int,
         pid: int | None, progress=print) -> tuple[Findings, dict]:
    host, port = rest_url.removeprefix("http://").rsplit(":", 1)
    rest, grpc_sender = RestSender(host, int(port)), GrpcSender(grpc_address)
    rng, found = random.Random(seed), Findings()
    started = time.monotonic()
    sent = {"rest": 0, "grpc": 0}
    try:
        if pid:
            found.rss_mb.append((0, rss_mb(pid)))
        for i in range(count):
            if time.monotonic() - started > seconds:
                progress(f"time limit of {seconds:.0f} s reached after {i} cases per transport")
                break
            rcase = fuzz_cases.rest_case(rng, t)
            status, headers, body = rest.send(rcase)
            judge_rest(rcase, status, headers, body, found)
            gcase = fuzz_grpc_cases.grpc_case(rng, t)
            code, details = grpc_sender.send(gcase)
            judge_grpc(gcase, code, details, found)
            sent["rest"] += 1
            sent["grpc"] += 1
            if (i + 1) % LIVENESS_EVERY == 0 and not liveness(rest, grpc_sender, rng, t, found):
                progress(f"after {i + 1} cases the server no longer answers a valid request")
            if pid and (i + 1) % RSS_EVERY == 0:
                found.rss_mb.append((2 * (i + 1), rss_mb(pid)))
                progress(f"{2 * (i + 1)} cases, {len(found.problems)} problem kinds, "
                         f"server RSS {found.rss_mb[-1][1]:.0f} MB")
        alive = liveness(rest, grpc_sender, rng, t, found)
        if pid:
            found.rss_mb.append((sent["rest"] + sent["grpc"], rss_mb(pid)))
    finally:
        rest.close()
        grpc_sender.close()
    return found, {"sent": sent, "seconds": round(time.monotonic() - started, 1), "alive_at_end": alive}


def report(found: Findings, meta: dict) -> dict:
    rss = [mb for _, mb in found.rss_mb]
    return {**meta, "answers": dict(sorted(found.counts.items())), "valid_sent": found.valid_sent,
            "valid_failed": found.valid_failed, "problems": found.problems,
            "rss_mb": {"start": rss[0] if rss else None, "max": max(rss) if rss else None,
                       "end": rss[-1] if rss else None, "samples": found.rss_mb}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="run or base folder to serve (default: an untrained CNN)")
    p.add_argument("--model-name", default="fuzz")
    p.add_argument("--rest", help="fuzz a running server instead: http://127.0.0.1:PORT (loopback only)")
    p.add_argument("--grpc", help="with --rest: 127.0.0.1:PORT")
    p.add_argument("--count", type=int, default=10_000, help="cases per transport")
    p.add_argument("--seconds", type=float, default=1800, help="stop sending after this long")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--server-arg", action="append", default=[], help="extra flag for tfship serve (repeatable)")
    p.add_argument("--out", type=Path, help="write the JSON report here")
    a = p.parse_args(argv)
    if (a.rest is None) != (a.grpc is None):
        p.error("--rest and --grpc go together")
    if a.rest and not re.match(r"http://(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$", a.rest):
        p.error("--rest must be a loopback address (http://127.0.0.1:PORT): this fuzzer sends nowhere else")
    if a.grpc and not re.match(r"(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$", a.grpc):
        p.error("--grpc must be a loopback address (127.0.0.1:PORT)")

    proc = None
    with tempfile.TemporaryDirectory(prefix="tfship-fuzz-") as scratch:
        if a.rest:
            rest_url, grpc_address, pid = a.rest, a.grpc, None
        else:
            model = a.model or untrained_model(Path(scratch))
            log = Path(scratch) / "server.log"
            proc, grpc_port, rest_port = start_server(model, a.model_name, a.workers, log, a.server_arg)
            rest_url, grpc_address, pid = f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", proc.pid
        try:
            wait_available(rest_url, a.model_name, proc)
            target = discover(rest_url, a.model_name)
            print(f"fuzzing '{target.model}' signature '{target.signature}' input '{target.input}' "
                  f"{list(target.shape)} at {rest_url} and grpc {grpc_address}, seed {a.seed}")
            found, meta = fuzz(rest_url, grpc_address, target, a.count, a.seconds, a.seed, pid)
            if proc is not None and proc.poll() is not None:
                found.problem("server process died", {"returncode": proc.returncode})
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                if proc.returncode not in (0, -15):
                    print((Path(scratch) / "server.log").read_text(errors="replace")[-3000:], file=sys.stderr)
    result = report(found, {"seed": a.seed, "count": a.count, **meta})
    if not meta["alive_at_end"]:
        result["problems"].setdefault("server does not answer a valid request at the end", {"count": 1, "example": {}})
    if a.out:
        a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"sent {meta['sent']['rest']} REST + {meta['sent']['grpc']} gRPC cases in {meta['seconds']} s; "
          f"valid requests {found.valid_sent}, failed {found.valid_failed}")
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in result["answers"].items()))
    if result["rss_mb"]["start"] is not None:
        r = result["rss_mb"]
        print(f"server RSS: start {r['start']:.0f} MB, max {r['max']:.0f} MB, end {r['end']:.0f} MB")
    for what, entry in result["problems"].items():
        print(f"PROBLEM {what}: {entry['count']}x, e.g. {json.dumps(entry['example'])[:600]}")
    print("no problems" if not result["problems"] else f"{len(result['problems'])} problem kinds")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
