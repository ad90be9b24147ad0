"""Training and the SavedModel contract (docs/SAVEDMODEL.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from tfship import contract
from tfship.errors import UsageError
from tfship.savedmodel import list_versions, resolve_model, write_new_version
from tfship.train.models import ARCHS, build
from tfship.train.trainer import TrainConfig, train


@pytest.mark.parametrize("arch", ARCHS)
def test_each_architecture_trains_briefly(arch, mnist):
    import keras

    keras.utils.set_random_seed(0)
    model = build(arch)
    assert model.input_shape == (None, contract.NUM_PIXELS)
    assert model.output_shape == (None, contract.NUM_CLASSES)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, y = mnist.train.flat_float()[:3000], mnist.train.labels[:3000].astype(np.int64)
    before = model.evaluate(x[:500], y[:500], verbose=0)[0]
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    after, accuracy = model.evaluate(x[:500], y[:500], verbose=0)
    # One epoch on 3k images must move every model well off chance (10%) and lower the loss.
    assert after < before
    assert accuracy > 0.7


def test_cnn_matches_deep_mnist_layout():
    model = build("cnn")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Reshape", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten",
                     "Dense", "Dropout", "Dense"]
    conv1, conv2 = model.get_layer("conv1"), model.get_layer("conv2")
    assert (conv1.filters, conv1.kernel_size, conv2.filters, conv2.kernel_size) == (32, (5, 5), 64, (5, 5))
    assert model.get_layer("fc1").units == 1024
    assert model.get_layer("dropout").rate == 0.5


def test_run_folder_contents(cnn_run):
    metrics = json.loads((cnn_run / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "epochs", "seconds", "seed", "versions", "data"):
        assert key in metrics
    assert metrics["test_accuracy"] > 0.9
    assert set(metrics["data"]["sha256"]) == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz"}
    assert any((cnn_run / "tensorboard").rglob("events.out.tfevents.*"))
    assert list_versions(cnn_run / "saved_model") == [1]


def test_signatures_have_exactly_the_contract(cnn_run):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(resolve_model(cnn_run).path))
    assert set(loaded.signatures) == {contract.PREDICT_SIGNATURE, contract.CLASSIFY_SIGNATURE}

    def spec(fn):
        inputs = {k: (v.dtype, v.shape.as_list()) for k, v in fn.structured_input_signature[1].items()}
        outputs = {k: (v.dtype, v.shape.as_list()) for k, v in fn.structured_outputs.items()}
        return inputs, outputs

    assert spec(loaded.signatures["predict_images"]) == (
        {"images": (tf.float32, [None, 784])}, {"scores": (tf.float32, [None, 10])})
    assert spec(loaded.signatures["serving_default"]) == (
        {"inputs": (tf.string, [None])},
        {"classes": (tf.string, [None, 10]), "scores": (tf.float32, [None, 10])})
    labels = (resolve_model(cnn_run).path / "assets" / "labels.txt").read_text().split()
    assert labels == list(contract.MNIST_LABELS)


def _examples(images: np.ndarray) -> list[bytes]:
    import tensorflow as tf

    return [tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=row))})).SerializeToString() for row in images]


def test_classify_and_predict_give_the_same_scores(cnn_run, mnist):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(resolve_model(cnn_run).path))
    x = mnist.test.flat_float()[:200]
    predicted = loaded.signatures["predict_images"](images=tf.constant(x))["scores"].numpy()
    classified = loaded.signatures["serving_default"](inputs=tf.constant(_examples(x)))
    np.testing.assert_array_equal(classified["scores"].numpy(), predicted)
    classes = classified["classes"].numpy().astype(str)
    assert classes.shape == (200, 10) and (classes == np.array(contract.MNIST_LABELS)).all()
    np.testing.assert_allclose(predicted.sum(axis=1), 1.0, atol=1e-5)  # softmax probabilities
    assert np.mean(predicted.argmax(axis=1) == mnist.test.labels[:200]) > 0.9


def test_new_run_adds_a_version_and_leaves_old_ones_alone(tmp_path, mnist_dir):
    out = tmp_path / "softmax"
    config = TrainConfig(arch="softmax", out=out, epochs=1, train_limit=2000, data_dir=mnist_dir, plots=False,
                         verbose=0)
    first = train(config)
    v1 = {p.relative_to(first.model.path): p.read_bytes() for p in first.model.path.rglob("*") if p.is_file()}
    second = train(config)
    assert (first.model.version, second.model.version) == (1, 2)
    assert {p.relative_to(first.model.path): p.read_bytes()
            for p in first.model.path.rglob("*") if p.is_file()} == v1
    assert resolve_model(out).version == 2
    assert resolve_model(out, version=1).path == first.model.path
    assert not [p for p in (out / "saved_model").iterdir() if not p.name.isdigit()]  # no temp folders left


def test_same_seed_same_model(tmp_path, mnist, mnist_dir):
    import tensorflow as tf

    x = tf.constant(mnist.test.flat_float()[:100])

    def scores(name: str, seed: int) -> np.ndarray:
        result = train(TrainConfig(arch="mlp", out=tmp_path / name, epochs=1, train_limit=2000, seed=seed,
                                   data_dir=mnist_dir, plots=False, verbose=0))
        loaded = tf.saved_model.load(str(result.model.path))
        return loaded.signatures["predict_images"](images=x)["scores"].numpy()

    # Bit-identical outputs mean identical weights (initialisation, dropout masks and data order).
    a, b, c = scores("a", 7), scores("b", 7), scores("c", 8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_half_written_version_is_invisible_and_cleaned_up(tmp_path):
    base = tmp_path / "base"
    seen_during_write = []

    def write(tmp):
        tmp.mkdir()
        (tmp / "saved_model.pb").write_bytes(b"partial")
        seen_during_write.append(list_versions(base))
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_new_version(base, write)
    assert seen_during_write == [[]]
    assert list(base.iterdir()) == []


def test_concurrent_writers_get_distinct_versions(tmp_path):
    base = tmp_path / "base"
    results, barrier = [], threading.Barrier(4, timeout=30)  # a broken writer fails the test, not hangs it

    def write(tmp):
        tmp.mkdir()
        (tmp / "saved_model.pb").write_bytes(b"x")
        barrier.wait()

    threads = [threading.Thread(target=lambda: results.append(write_new_version(base, write).version))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [1, 2, 3, 4]


def test_bad_arguments_fail_fast():
    with pytest.raises(UsageError, match="unknown architecture"):
        TrainConfig(arch="resnet", out="x")
    with pytest.raises(UsageError, match="--epochs must be a positive integer"):
        TrainConfig(arch="cnn", out="x", epochs=0)


def test_help_and_argument_errors_do_not_import_tensorflow():
    code = ("import sys\nfrom tfship.cli import main\n"
            "for argv in (['--help'], ['train', '--help'], ['export', '--help'], ['train', '--arch', 'nope']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
            "assert 'keras' not in sys.modules\nprint('clean')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=60)
    assert result.stdout.strip().endswith("clean"), result.stderr
