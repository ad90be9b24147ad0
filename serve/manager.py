"""Models, their versions on disk, and which versions are loaded: TF Serving's manager, in small.

Each poll (every ``--file_system_poll_wait_seconds``) lists the complete versions under a model's
base folder (integer-named folders holding ``saved_model.pb``; tfship's ``.tmp-version-*`` folders
and half-written ones are not versions), picks the ones the version policy wants, loads and warms
up the new ones, and only then unloads versions no longer wanted. A request holds the servable it
resolved, so an unload never breaks a request in flight. A version that fails to load is logged,
marked END with its error in the status, and never replaces what is serving; it is retried only
when what it was loaded from changes (its ``saved_model.pb``; with the onnx or tflite backend also
the exports manifests beside the base folder, so a version exported after it appeared loads then).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tfship.savedmodel import list_versions, version_folders
from tfship.serve.backends import backend_class
from tfship.serve.backends.base import BackendOptions
from tfship.serve.config import BatchingOptions, LoadOptions, ModelConfig, check_version_labels
from tfship.serve.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from tfship.serve.loading import load_version
from tfship.serve.servable import Servable

log = logging.getLogger("tfship.serve")


@dataclass
class VersionState:
    """One version's life, as ``GetModelStatus`` reports it."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END (ModelVersionStatus.State)
    error_code: str = "OK"
    error_message: str = ""
    servable: Servable | None = None
    failed_key: tuple | None = None  # what the failed load was made from (Backend.load_key)


@dataclass
class _Model:
    config: ModelConfig
    versions: dict[int, VersionState] = field(default_factory=dict)


class ModelManager:
    """Loads and serves the versions of the configured models; thread-safe."""

    def __init__(self, models: list[ModelConfig], batching: BatchingOptions | None = None,
                 on_batch: Callable[[str, int, int], None] | None = None,
                 on_change: Callable[[], None] | None = None, backend: BackendOptions = BackendOptions(),
                 load: LoadOptions = LoadOptions()) -> None:
        self._models = {m.name: _Model(m) for m in models}
        self._load_options = load  # retries, warmup, tags (serve/loading.py)
        self._labels_in_force: dict[str, dict[str, int]] = {}  # the labels the last check_labels() accepted
        self._batching = batching
        self._backend = backend
        self._load_key = backend_class(backend.kind).load_key
        self._on_batch = on_batch
        self._on_change = on_change  # after a reconcile that loaded or unloaded something
        self._changes = 0
        self._lock = threading.Lock()
        self._reconcile_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def model_names(self) -> list[str]:
        return list(self._models)

    def start_polling(self, interval_seconds: float) -> None:
        """Poll the file system for version changes every ``interval_seconds`` (TF Serving: 0 = never)."""
        if interval_seconds <= 0:
            return
        self._poller = threading.Thread(target=self._poll, args=(interval_seconds,), name="version-poller",
                                        daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        with self._lock:
            servables = [s.servable for m in self._models.values() for s in m.versions.values() if s.servable]
        for s in servables:
            s.close()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.reconcile()
            except Exception:  # a poll must never kill the poller; the next poll tries again
                log.exception("polling model versions failed")

    def reconcile(self) -> None:
        """Bring every model's loaded versions in line with its policy and what is on disk."""
        with self._reconcile_lock:
            before = self._changes
            for model in self._models.values():
                self._reconcile(model)
            self._report_change(before)

    def _report_change(self, before: int) -> None:
        if self._changes != before and self._on_change is not None:
            self._on_change()

    def set_models(self, models: list[ModelConfig]) -> None:
        """Serve exactly ``models`` (TF Serving's ReloadConfig): new models load; models still listed keep
        their loaded versions and take their new policy, labels and base path; models no longer listed
        are unloaded. Returns when the loads and unloads are done."""
        with self._reconcile_lock:
            before = self._changes
            with self._lock:
                old = self._models
                updated = {m.name: old.get(m.name) or _Model(m) for m in models}
                for m in models:
                    updated[m.name].config = m
                removed = [model for name, model in old.items() if name not in updated]
                self._models = updated
            for model in updated.values():
                self._reconcile(model)
            for model in removed:
                self._unload_all(model)
            self._report_change(before)
            self.check_labels()

    def check_labels(self) -> None:
        """TF Serving's label rule (config.check_version_labels). On FAILED_PRECONDITION the labels in force
        before stay in force, as TF Serving keeps its old label map."""
        in_force = self._labels_in_force
        with self._lock:
            models = {name: model for name, model in self._models.items()}
        try:
            check_version_labels([m.config for m in models.values()],
                                 lambda name: self._available_versions(models[name]), in_force,
                                 self._load_options.allow_version_labels_for_unavailable_models)
        except FailedPreconditionError:
            with self._lock:
                for name, model in models.items():
                    model.config = replace(model.config, labels=dict(in_force.get(name, {})))
            raise
        self._labels_in_force = {name: dict(m.config.labels) for name, m in models.items()}

    def has_available(self, name: str) -> bool:
        """Whether some version of model ``name`` answers requests."""
        model = self._models.get(name)
        return model is not None and bool(self._available_versions(model))

    def _unload_all(self, model: _Model) -> None:
        with self._lock:
            states = [s for s in model.versions.values() if s.state == "AVAILABLE"]
            for s in states:
                s.state = "UNLOADING"
        self._unload(model, states, "the model is no longer configured")

    def _unload(self, model: _Model, states: list[VersionState], why: str) -> None:
        """Close versions already marked UNLOADING (requests holding them finish first), then END."""
        self._changes += len(states)
        for s in states:
            servable, s.servable = s.servable, None
            if servable is not None:
                servable.close()
            with self._lock:
                s.state = "END"
            log.info("unloaded model %s version %d: %s", model.config.name, s.version, why)

    def _reconcile(self, model: _Model) -> None:
        cfg = model.config
        on_disk = list_versions(cfg.base_path)
        candidates = [v for v in on_disk if not self._failed_unchanged(model, v)]
        wanted = set(cfg.policy.select(candidates))
        for v in sorted(wanted, reverse=True):
            state = model.versions.get(v)
            if state is None or state.state != "AVAILABLE":
                self._load(model, v)
        with self._lock:
            available_wanted = [v for v in wanted if model.versions[v].state == "AVAILABLE"]
            # Availability first: while no wanted version answers, keep serving what does.
            to_unload = [s for v, s in model.versions.items()
                         if s.state == "AVAILABLE" and v not in wanted and available_wanted]
            for s in to_unload:
                s.state = "UNLOADING"
        self._unload(model, to_unload, "the version policy no longer wants it")

    def _failed_unchanged(self, model: _Model, version: int) -> bool:
        state = model.versions.get(version)
        if state is None or state.failed_key is None:
            return False
        return self._load_key(_folder(model.config, version), self._backend) == state.failed_key

    def _load(self, model: _Model, version: int) -> None:
        self._changes += 1
        cfg = model.config
        path = _folder(cfg, version)
        with self._lock:
            model.versions[version] = VersionState(version, "LOADING")
        log.info("loading model %s version %d from %s", cfg.name, version, path)
        key = self._load_key(path, self._backend)
        try:
            servable = load_version(
                lambda: Servable(cfg.name, version, path, self._batching, self._on_batch, self._backend),
                path, self._load_options, self._stop, f"model {cfg.name} version {version}")
        except Exception as e:  # any load failure: log it, report it, keep serving the current version
            log.error("model %s version %d failed to load from %s; still serving %s: %s: %s",
                      cfg.name, version, path, self._available_versions(model) or "nothing",
                      type(e).__name__, e)
            with self._lock:  # the status carries the message only: no Python class name to clients
                model.versions[version] = VersionState(version, "END", "UNKNOWN", f"Failed to load {path}: {e}",
                                                       failed_key=key)
            return
        with self._lock:
            model.versions[version] = VersionState(version, "AVAILABLE", servable=servable)
        log.info("model %s version %d is available: %s", cfg.name, version, servable.backend.description)

    def _available_versions(self, model: _Model) -> list[int]:
        with self._lock:
            return sorted(v for v, s in model.versions.items() if s.state == "AVAILABLE")

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request names; TF Serving's errors and messages when there is none."""
        model = self._models.get(name)
        version = _requested_version(model, version, label)
        with self._lock:
            if model is not None:
                if version is None:
                    available = [v for v, s in model.versions.items() if s.state == "AVAILABLE"]
                    if available:
                        return model.versions[max(available)].servable
                else:
                    s = model.versions.get(version)
                    if s is not None and s.state == "AVAILABLE":
                        return s.servable
        request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        raise NotFoundError(f"Servable not found for request: {request}")

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionState]:
        """Version states, newest first, as ``GetModelStatus`` reports them."""
        model = self._models.get(name)
        version = _requested_version(model, version, label)
        with self._lock:
            states = dict(model.versions) if model else {}
            if version is not None:
                if version not in states:
                    raise NotFoundError(f"Could not find version {version} of model {name}")
                return [_copy(states[version])]
            if not states:
                raise NotFoundError(f"Could not find any versions of model {name}")
            return [_copy(states[v]) for v in sorted(states, reverse=True)]


def _copy(s: VersionState) -> VersionState:
    return VersionState(s.version, s.state, s.error_code, s.error_message)


def _folder(cfg: ModelConfig, version: int) -> Path:
    """A version's folder: TF Serving's zero-padded names ("00000123") included."""
    return version_folders(cfg.base_path).get(version, cfg.base_path / str(version))


def _requested_version(model: _Model | None, version: int | None, label: str | None) -> int | None:
    """The version a request names by number or label, with TF Serving's errors for bad combinations."""
    if version is not None and label is not None:
        raise InvalidArgumentError(
            f"Both model version ({version}) and model version label ({label}) cannot be supplied.")
    if label is None:
        return version
    if model is None or label not in model.config.labels:
        raise InvalidArgumentError(f"Unrecognized servable version label: {label}")
    return model.config.labels[label]
