"""Fixtures for the iOS app checks: an exported CoreML classifier and a scratch copy of the app."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tfship.export.ios_install import APP_CONTRACT, APP_PROJECT_FILE

APP_DIR = Path(__file__).resolve().parents[2] / "ios_demo"


@pytest.fixture(scope="session")
def softmax_run(tmp_path_factory) -> Path:
    """A run folder with the untrained softmax model in ``saved_model/1``: the contract is about
    names and shapes, not accuracy, and this model saves and converts in a few seconds."""
    from tfship.train import models, saved_model

    run = tmp_path_factory.mktemp("runs") / "softmax"
    saved_model.save(models.build("softmax"), run / "saved_model")
    return run


@pytest.fixture(scope="session")
def exported_mlmodel(softmax_run) -> Path:
    """What `export-all` writes for the app, by the real exporter (tfship.export.coreml).
    Read-only: copy it before altering."""
    from tfship.export.base import ExportOptions
    from tfship.export.coreml import CoremlExporter
    from tfship.export.source import load_source
    from tfship.savedmodel import resolve_model

    out = softmax_run / "coreml-exports"
    out.mkdir()
    artifacts = CoremlExporter().export(load_source(resolve_model(softmax_run)), out, ExportOptions())
    mlmodels = [a.path for a in artifacts if a.path.endswith(".mlmodel")]
    assert mlmodels == [f"{APP_CONTRACT.class_name}.mlmodel"], f"exporter wrote {[a.path for a in artifacts]}"
    return out / mlmodels[0]


@pytest.fixture
def app_copy(tmp_path) -> Path:
    """An app folder to install into, so tests never touch the real ios_demo/."""
    app = tmp_path / "ios_demo"
    (app / "MNISTDemo" / "Model").mkdir(parents=True)
    shutil.copy(APP_DIR / APP_PROJECT_FILE, app / APP_PROJECT_FILE)
    return app
