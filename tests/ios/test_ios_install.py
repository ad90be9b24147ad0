"""`tfship ios-install`: finds the exported .mlmodel, checks it, copies it into the app."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tfship import cli
from tfship.errors import ModelNotFoundError, SignatureError, UsageError
from tfship.export.ios_install import APP_MODEL_DIR, find_mlmodel, install

FILE = "MNISTClassifier.mlmodel"


@pytest.fixture
def run_dir(tmp_path, exported_mlmodel):
    """A run folder as `export-all --model runs/cnn` leaves it."""
    run = tmp_path / "runs" / "cnn"
    (run / "exports").mkdir(parents=True)
    (run / "exports" / FILE).write_bytes(exported_mlmodel.read_bytes())
    return run


def test_finds_the_model_from_a_run_an_exports_folder_or_the_file(run_dir):
    expected = run_dir / "exports" / FILE
    assert find_mlmodel(run_dir) == expected
    assert find_mlmodel(run_dir / "exports") == expected
    assert find_mlmodel(expected) == expected


def test_takes_the_latest_of_versioned_exports(tmp_path, exported_mlmodel):
    for version in (2, 10, 9):
        (tmp_path / "exports" / str(version)).mkdir(parents=True)
        (tmp_path / "exports" / str(version) / FILE).write_bytes(exported_mlmodel.read_bytes())
    assert find_mlmodel(tmp_path) == tmp_path / "exports" / "10" / FILE


def test_missing_export_says_to_run_export_all(tmp_path):
    (tmp_path / "runs" / "cnn" / "saved_model").mkdir(parents=True)
    with pytest.raises(ModelNotFoundError, match=r"no exported MNISTClassifier\.mlmodel .*export-all --model runs/cnn"):
        find_mlmodel(tmp_path / "runs" / "cnn")
    with pytest.raises(ModelNotFoundError, match="does not exist.*export-all"):
        find_mlmodel(tmp_path / "nowhere")


def test_an_export_under_another_name_is_pointed_out(tmp_path, exported_mlmodel):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "DigitNet.mlmodel").write_bytes(exported_mlmodel.read_bytes())
    with pytest.raises(ModelNotFoundError, match=r"found .*DigitNet\.mlmodel: pass it with --model"):
        find_mlmodel(tmp_path)


def test_an_mlpackage_is_pointed_to_the_mlmodel_beside_it(tmp_path):
    package = tmp_path / "exports" / "MNISTClassifier.mlpackage"
    package.mkdir(parents=True)
    with pytest.raises(UsageError, match=r"ML Program package.*exports/MNISTClassifier\.mlmodel"):
        find_mlmodel(package)


def test_refuses_a_file_that_is_not_an_mlmodel(tmp_path):
    other = tmp_path / "model.onnx"
    other.write_bytes(b"onnx")
    with pytest.raises(UsageError, match=r"not a \.mlmodel"):
        find_mlmodel(other)


def test_install_copies_the_model_into_the_app(run_dir, app_copy):
    source = run_dir / "exports" / FILE
    target = install(source, app_copy)
    assert target == app_copy / APP_MODEL_DIR / FILE
    assert target.read_bytes() == source.read_bytes()
    assert target.stat().st_mode == source.stat().st_mode
    # No temporary file is left beside it for Xcode to pick up.
    assert sorted(p.name for p in target.parent.iterdir()) == [FILE]


def test_install_renames_to_the_contract_name(run_dir, app_copy, tmp_path):
    renamed = tmp_path / "mnist_cnn.mlmodel"
    renamed.write_bytes((run_dir / "exports" / FILE).read_bytes())
    assert install(renamed, app_copy).name == FILE


def test_install_refuses_a_model_the_app_cannot_use(run_dir, app_copy, tmp_path):
    import coremltools as ct

    spec = ct.utils.load_spec(str(run_dir / "exports" / FILE))
    ct.utils.rename_feature(spec, "classLabelProbs", "probabilities")
    bad = tmp_path / FILE
    ct.utils.save_spec(spec, str(bad))
    with pytest.raises(SignatureError, match="probabilities_output: app expects 'classLabelProbs'"):
        install(bad, app_copy)
    assert not (app_copy / APP_MODEL_DIR / FILE).exists()
    # --no-check is the user's explicit override.
    assert cli.main(["ios-install", "--model", str(bad), "--app-dir", str(app_copy), "--no-check"]) == 0
    assert (app_copy / APP_MODEL_DIR / FILE).read_bytes() == bad.read_bytes()


def test_install_refuses_a_folder_that_is_not_the_app(run_dir, tmp_path):
    with pytest.raises(UsageError, match="not the iOS demo app folder"):
        install(run_dir / "exports" / FILE, tmp_path)


def test_cli_installs(run_dir, app_copy, capsys):
    assert cli.main(["ios-install", "--model", str(run_dir), "--app-dir", str(app_copy)]) == 0
    assert (app_copy / APP_MODEL_DIR / FILE).read_bytes() == (run_dir / "exports" / FILE).read_bytes()
    assert "installed" in capsys.readouterr().out


def test_cli_without_an_export_fails_fast_with_the_fix(tmp_path, app_copy):
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tfship.cli", "ios-install", "--model", str(tmp_path),
                           "--app-dir", str(app_copy)], capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - started
    assert done.returncode == 1
    assert "ios-install: error: no exported MNISTClassifier.mlmodel" in done.stderr
    assert "export-all --model runs/cnn" in done.stderr
    assert "Traceback" not in done.stderr
    # Checked before coremltools (and with it TensorFlow, ~3-5 s) is imported.
    assert seconds < 3.0, f"took {seconds:.1f} s"
