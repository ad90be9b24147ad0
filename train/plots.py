"""Training plots a person would rather look at than read: curves, confusion matrix, mistakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def training_curves(path: Path, history: dict[str, list[float]]) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def confusion_plot(path: Path, matrix: np.ndarray) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if i == j else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(len(matrix)))
    ax.set_yticks(range(len(matrix)))
    ax.set_title(f"confusion matrix, {int(np.trace(matrix))}/{int(matrix.sum())} correct")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mistakes_grid(path: Path, images: np.ndarray, labels: np.ndarray, probs: np.ndarray, limit: int = 36) -> None:
    plt = _pyplot()
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    # The most confident mistakes first: those are the ones worth looking at.
    wrong = wrong[np.argsort(-probs[wrong, predicted[wrong]])][:limit]
    cols = 6
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.8), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(images[i], cmap="gray")
        ax.set_title(f"#{i}: {labels[i]}→{predicted[i]} ({probs[i, predicted[i]]:.2f})", fontsize=7)
    fig.suptitle(f"{len(np.flatnonzero(predicted != labels))} misclassified test digits (true→predicted)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(folder: Path, history: dict[str, list[float]], images: np.ndarray, labels: np.ndarray,
              probs: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    training_curves(folder / "training_curves.png", history)
    matrix = confusion_matrix(labels, probs.argmax(axis=1), probs.shape[1])
    confusion_plot(folder / "confusion_matrix.png", matrix)
    mistakes_grid(folder / "misclassified.png", images, labels, probs)
