"""Kubernetes manifests for the pinned ``tensorflow/serving`` image, and a KServe InferenceService.

``tfship serve --write-config DIR --model RUN`` writes, beside the container's config files,
``DIR/kubernetes.yaml`` (ConfigMap with those files, Deployment, Service, HorizontalPodAutoscaler,
PodDisruptionBudget) and ``DIR/inferenceservice.yaml`` (KServe, modelFormat tensorflow, protocol
v1). The Deployment runs the image with the Dockerfile's own ENTRYPOINT flags
(:data:`tfship.serve.config.CONTAINER_FLAGS`), mounts the ConfigMap at ``/etc/tfship`` and the model
volume (a PersistentVolumeClaim holding the version folders) at ``/models/<name>``, and probes
TF Serving's model status URL. They are validated offline (tests/serve/test_serve_k8s.py); no cluster
runs them here.
"""

from __future__ import annotations

from pathlib import Path

from tfship.serve.config import (BATCHING_FILE, CONTAINER_CONFIG_DIR, CONTAINER_FLAGS, CONTAINER_MODELS_ROOT,
                                 GRPC_PORT, MODEL_CONFIG_FILE, MONITORING_FILE, REST_PORT, TF_SERVING_IMAGE)

MANIFESTS_FILE = "kubernetes.yaml"
INFERENCE_SERVICE_FILE = "inferenceservice.yaml"


def app_name(model: str) -> str:
    """A DNS-1123 name for the model's objects."""
    return "tfship-" + "".join(c if c.isalnum() else "-" for c in model.lower()).strip("-")


def manifests(model: str, config_texts: dict[str, str]) -> list[dict]:
    """ConfigMap, Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget for ``model``."""
    app = app_name(model)
    labels = {"app.kubernetes.io/name": app}
    status_probe = {"httpGet": {"path": f"/v1/models/{model}", "port": "http"}}
    container = {
        "name": "tensorflow-serving",
        "image": TF_SERVING_IMAGE,
        "command": ["/usr/bin/tensorflow_model_server"],
        "args": list(CONTAINER_FLAGS),
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT}, {"name": "http", "containerPort": REST_PORT}],
        "readinessProbe": {**status_probe, "initialDelaySeconds": 5, "periodSeconds": 5},
        "livenessProbe": {**status_probe, "initialDelaySeconds": 60, "periodSeconds": 15, "failureThreshold": 4},
        # One CPU container: the CNN's batches at 2 ms timeout fit in 1-2 cores and ~1 GiB.
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        "volumeMounts": [{"name": "config", "mountPath": CONTAINER_CONFIG_DIR, "readOnly": True},
                         {"name": "models", "mountPath": f"{CONTAINER_MODELS_ROOT}/{model}", "readOnly": True}],
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config", "labels": labels},
         "data": dict(config_texts)},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "labels": labels},
         "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [container],
                                        "volumes": [{"name": "config", "configMap": {"name": f"{app}-config"}},
                                                    {"name": "models", "persistentVolumeClaim": {
                                                        "claimName": f"{app}-models", "readOnly": True}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "labels": labels},
         "spec": {"selector": labels, "ports": [
             {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "appProtocol": "grpc"},
             {"name": "http", "port": REST_PORT, "targetPort": "http"}]}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": app, "labels": labels},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
                  "minReplicas": 2, "maxReplicas": 8,
                  "metrics": [{"type": "Resource", "resource": {
                      "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": app, "labels": labels},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}},
    ]


def inference_service(model: str) -> dict:
    """KServe's InferenceService for the same model: TF Serving runtime, protocol v1, the same volume."""
    app = app_name(model)
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": app, "labels": {"app.kubernetes.io/name": app}},
            "spec": {"predictor": {"minReplicas": 1, "maxReplicas": 8, "model": {
                "modelFormat": {"name": "tensorflow"}, "protocolVersion": "v1",
                "storageUri": f"pvc://{app}-models/"}}}}


def write(out_dir: Path, model: str) -> list[Path]:
    """Write both YAML files from the container config files already in ``out_dir``."""
    import yaml

    texts = {name: (out_dir / name).read_text() for name in (MODEL_CONFIG_FILE, BATCHING_FILE, MONITORING_FILE)}
    paths = [out_dir / MANIFESTS_FILE, out_dir / INFERENCE_SERVICE_FILE]
    paths[0].write_text(yaml.safe_dump_all(manifests(model, texts), sort_keys=False))
    paths[1].write_text(yaml.safe_dump(inference_service(model), sort_keys=False))
    return paths
