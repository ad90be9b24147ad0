"""Build and test the app's Swift package (ios_demo/MNISTDemoCore) with the real Swift toolchain.

``swift build --build-tests`` once per session (incremental: .ci/run has usually built already), then
``swift test --skip-build --filter SUITE`` per pytest test, with the files and URLs the Swift tests
read in the environment. XCTest's console output is parsed into one result per Swift test, so a
failure reads as the Swift test's name, its file:line and its assertion message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import ios_swift

PACKAGE_DIR = ios_swift.APP_DIR / "MNISTDemoCore"
TEST_TARGET = "MNISTDemoCoreTests"
# Where the toolchain is installed on this project's machines when it is not on PATH.
SWIFT_FALLBACK = Path("/opt/swift/usr/bin/swift")
# A cold build of the package and its tests takes ~60 s on the shared 2-core machine.
BUILD_TIMEOUT_S = 600
RUN_TIMEOUT_S = 180

_CASE_END = re.compile(r"^Test Case '(?P<suite>\w+)\.(?P<test>\w+)' (?P<status>passed|failed|skipped) ")
# "path/File.swift:12: error: Suite.test : XCTAssertEqual failed: ... - message" (file may be <EXPR>:0
# for a thrown error) and "path/File.swift:12: Suite.test : Test skipped - reason".
_ISSUE = re.compile(r"^(?P<where>\S+?:\d+): (?:error: )?(?P<suite>\w+)\.(?P<test>\w+) : (?P<message>.*)$")


def find_swift() -> str | None:
    """``swift`` from PATH, else the project's install location, else None."""
    found = shutil.which("swift")
    if found:
        return found
    return str(SWIFT_FALLBACK) if os.access(SWIFT_FALLBACK, os.X_OK) else None


@dataclass(frozen=True)
class SwiftTestResult:
    suite: str
    test: str
    status: str  # passed / failed / skipped
    messages: tuple[str, ...]  # "File.swift:12: message", in the order XCTest printed them

    @property
    def name(self) -> str:
        return f"{self.suite}.{self.test}"


@dataclass(frozen=True)
class SwiftTestRun:
    command: str
    returncode: int
    output: str
    results: tuple[SwiftTestResult, ...]

    def by_status(self, status: str) -> list[SwiftTestResult]:
        return [r for r in self.results if r.status == status]

    def report(self) -> str:
        """What a reader needs: each failed or skipped Swift test with its messages, or, when the
        run died without results (a crash, a build problem), the end of its output."""
        lines = [f"$ {self.command}  (exit {self.returncode}; "
                 f"{len(self.by_status('passed'))} passed, {len(self.by_status('failed'))} failed, "
                 f"{len(self.by_status('skipped'))} skipped)"]
        for result in self.by_status("failed") + self.by_status("skipped"):
            lines.append(f"  {result.status.upper()} {result.name}")
            lines.extend(f"      {m}" for m in result.messages)
        if self.returncode != 0 and not self.by_status("failed"):
            lines.append("  no Swift test reported a failure; the output ends with:")
            lines.extend(f"      {line}" for line in self.output.splitlines()[-25:])
        return "\n".join(lines)


def parse_xctest_output(output: str) -> tuple[SwiftTestResult, ...]:
    messages: dict[str, list[str]] = {}
    results = []
    for line in output.splitlines():
        issue = _ISSUE.match(line)
        if issue:
            where = issue["where"]
            short = where if where.startswith("<") else f"{Path(where.rsplit(':', 1)[0]).name}:{where.rsplit(':', 1)[1]}"
            messages.setdefault(f"{issue['suite']}.{issue['test']}", []).append(f"{short}: {issue['message']}")
            continue
        end = _CASE_END.match(line)
        if end:
            name = f"{end['suite']}.{end['test']}"
            results.append(SwiftTestResult(end["suite"], end["test"], end["status"],
                                           tuple(messages.pop(name, []))))
    return tuple(results)


class SwiftPackage:
    """The toolchain and the package, built once."""

    def __init__(self, swift: str, package_dir: Path = PACKAGE_DIR) -> None:
        self.swift = swift
        self.package_dir = package_dir
        self.build_seconds: float | None = None

    def build(self) -> None:
        """``swift build --build-tests``; raises RuntimeError with the compiler's errors."""
        command = [self.swift, "build", "--build-tests"]
        begin = time.monotonic()
        done = subprocess.run(command, cwd=self.package_dir, capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT_S)
        self.build_seconds = time.monotonic() - begin
        if done.returncode != 0:
            output = done.stdout + done.stderr
            errors = [line for line in output.splitlines() if ": error: " in line] or output.splitlines()[-30:]
            raise RuntimeError(f"'swift build --build-tests' in {self.package_dir} failed "
                               f"(exit {done.returncode}):\n" + "\n".join(errors))

    def test(self, suites: list[str], env: dict[str, str] | None = None) -> SwiftTestRun:
        """Run the given XCTest classes (already built) with ``env`` added to the environment."""
        pattern = "|".join(rf"{TEST_TARGET}\.{suite}/" for suite in suites)
        command = [self.swift, "test", "--skip-build", "--disable-swift-testing", "--filter", pattern]
        done = subprocess.run(command, cwd=self.package_dir, capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=RUN_TIMEOUT_S)
        output = done.stdout + done.stderr
        return SwiftTestRun(" ".join(command[1:]), done.returncode, output, parse_xctest_output(output))


def assert_swift_tests_pass(run: SwiftTestRun, suites: list[str]) -> None:
    """Every Swift test of ``suites`` ran and passed: a failure, a skip (an input missing from the
    environment), a crash or a suite that ran no test all fail, with the Swift test's own words."""
    ran = {r.suite for r in run.results}
    missing = [s for s in suites if s not in ran]
    problems = run.by_status("failed") + run.by_status("skipped")
    if run.returncode != 0 or problems or missing:
        # The Swift tests' own words, without a Python traceback around them.
        pytest.fail(run.report() + (f"\n  no test ran in {missing}" if missing else ""), pytrace=False)
