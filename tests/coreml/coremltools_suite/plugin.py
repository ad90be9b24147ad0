"""A pytest plugin that turns coremltools' own converter tests into a numeric test suite for tfship's
CoreML evaluator (``tfship.export.coremleval``), off macOS.

Off macOS, coremltools' tests convert and then skip the numeric comparison: ``compare_backend`` in
``coremltools/converters/mil/testing_utils.py`` predicts only ``if _IS_MACOS and ...`` and the TF/Keras
frontends' ``run_compare_*`` return early when ``_macos_version() < (10, 13)`` (it is ``()`` on Linux).
This plugin, loaded with ``-p coremltools_suite.plugin``:

- replaces ``MLModel.predict`` with tfship's evaluator run on the model's spec (and package folder),
- sets those two gates to "macOS 15", so every comparison runs with coremltools' own tolerances,
- keeps only the tests named in ``--coremlsuite-select`` (a file of test IDs with function addresses
  stripped, see ``stable_id``), in the file's order,
- writes one JSON line per test to ``--coremlsuite-log``: the outcome class (see ``classify``), the
  message, and whether the evaluator ran (a "pass" where no prediction ran proves nothing).

Nothing of coremltools is copied: its tests run as shipped in its wheel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_STATE: dict[str, Any] = {"predicted": False, "log": None}
FAKE_MACOS = (15, 0)


def stable_id(item: pytest.Item) -> str:
    """``module::Class::test[params]`` with the ``at 0x...`` addresses that change every run removed."""
    module = item.module.__name__.rsplit(".", 1)[-1] if item.module else "?"
    cls = f"{item.cls.__name__}::" if item.cls else ""
    return _ADDRESS.sub("", f"{module}::{cls}{item.name}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("coremlsuite", "coremltools' tests with tfship's CoreML evaluator")
    group.addoption("--coremlsuite-select", default=None, help="file of stable test IDs to run")
    group.addoption("--coremlsuite-log", default=None, help="JSON-lines file of outcomes")
    group.addoption("--coremlsuite-list", default=None, help="write every collected stable test ID here")


def _predict(self: Any, data: Any, state: Any = None) -> dict[str, np.ndarray]:
    """``MLModel.predict`` for one sample dict, by tfship's evaluator."""
    from tfship.export import coremleval

    if state is not None or isinstance(data, list):
        raise NotImplementedError("tfship's evaluator predicts one sample dict without state")
    ev = self.__dict__.get("_tfship_evaluator")
    if ev is None:
        path = Path(self.package_path) if self.is_package else Path("<in-memory .mlmodel>")
        ev = coremleval.from_spec(self._spec, path)
        self.__dict__["_tfship_evaluator"] = ev
    _STATE["predicted"] = True
    feeds = {k: np.asarray(v)[None] for k, v in data.items()}
    return {k: v[0] for k, v in ev.predict(feeds).items()}


def pytest_configure(config: pytest.Config) -> None:
    import coremltools.converters.mil.testing_utils as mil_testing
    import coremltools.models.utils as ct_utils
    from coremltools.models import MLModel

    MLModel.predict = _predict
    mil_testing._IS_MACOS = True
    ct_utils._macos_version = lambda: FAKE_MACOS
    try:
        import coremltools.converters.mil.frontend.tensorflow2.test.testing_utils as tf2_testing
        tf2_testing._macos_version = lambda: FAKE_MACOS
    except ImportError:  # TF 2 frontend tests absent: the TF 1 ones read ct_utils._macos_version
        pass
    log = config.getoption("--coremlsuite-log")
    if log:
        _STATE["log"] = open(log, "a", encoding="utf-8")  # noqa: SIM115 (closed at unconfigure)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _STATE["log"] is not None:
        _STATE["log"].close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    listing = config.getoption("--coremlsuite-list")
    if listing:
        Path(listing).write_text("".join(stable_id(it) + "\n" for it in items), encoding="utf-8")
    select = config.getoption("--coremlsuite-select")
    if not select:
        return
    wanted = [line.strip() for line in Path(select).read_text(encoding="utf-8").splitlines() if line.strip()]
    order = {sid: i for i, sid in enumerate(wanted)}
    keep = sorted((it for it in items if stable_id(it) in order), key=lambda it: order[stable_id(it)])
    deselected = [it for it in items if stable_id(it) not in order]
    config.hook.pytest_deselected(items=deselected)
    items[:] = keep


def classify(excinfo: pytest.ExceptionInfo | None, skipped: bool, predicted: bool) -> str:
    """pass / numeric-fail / unsupported-op / crash (in the evaluator) / not-convertible / skipped /
    no-prediction (passed without the evaluator running)."""
    if skipped:
        return "skipped"
    if excinfo is None:
        return "pass" if predicted else "no-prediction"
    from tfship.export.coremleval import UnsupportedCoremlOpError

    if isinstance(excinfo.value, UnsupportedCoremlOpError):
        return "unsupported-op"
    in_evaluator = any("coremleval" in str(entry.path) for entry in excinfo.traceback)
    if in_evaluator or (predicted and not isinstance(excinfo.value, AssertionError)):
        return "crash"
    if isinstance(excinfo.value, AssertionError) and predicted:
        return "numeric-fail"
    return "not-convertible"


def _op_of(excinfo: pytest.ExceptionInfo | None) -> str | None:
    from tfship.export.coremleval import UnsupportedCoremlOpError

    if excinfo is not None and isinstance(excinfo.value, UnsupportedCoremlOpError):
        return excinfo.value.op_type
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _STATE["predicted"] = False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" and not (report.skipped and call.when == "setup"):
        return
    excinfo = call.excinfo if call.excinfo is not None and not report.skipped else None
    kind = classify(excinfo, report.skipped, bool(_STATE["predicted"]))
    if kind in ("crash", "numeric-fail", "unsupported-op", "not-convertible") and report.outcome == "passed":
        kind = "pass"
    record = {"id": stable_id(item), "outcome": kind, "op": _op_of(excinfo),
              "message": "" if excinfo is None else _short(excinfo)}
    if _STATE["log"] is not None:
        _STATE["log"].write(json.dumps(record) + "\n")
        _STATE["log"].flush()


def _short(excinfo: pytest.ExceptionInfo) -> str:
    text = f"{type(excinfo.value).__name__}: {excinfo.value}".strip()
    where = [e for e in excinfo.traceback if "coremleval" in str(e.path)]
    if where:
        text += f" [at {Path(str(where[-1].path)).name}:{where[-1].lineno + 1}]"
    return text[:400]

