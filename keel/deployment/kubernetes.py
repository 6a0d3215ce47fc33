"""Kubernetes manifests for a keel Bento's container image: Deployment, Service, autoscaler.

Written, not applied: no cluster runs here. The probes use BentoML's /readyz and /livez.
Secrets the pods read, created by the cluster's operator (never from the repository):
    <app>-prediction-log   key `url`: the prediction log's SQLAlchemy URL
    <app>-api-key          key `key`: the API key, only when the spec sets deployment.api_key_env
where <app> is `keel-<model name>` in lower case with hyphens (see `app_name`)."""

from __future__ import annotations

from typing import List, Optional

API_KEY_SECRET_KEY = "key"


def app_name(model_name: str) -> str:
    return f"keel-{model_name}".lower().replace("_", "-")


def api_key_secret_name(model_name: str) -> str:
    return f"{app_name(model_name)}-api-key"


def serving_manifests(model_name: str, version: int, image: str, port: int = 3000, replicas: int = 2,
                      max_replicas: int = 6, cpu: str = "1", memory: str = "1Gi",
                      namespace: str = "default", api_key_env: Optional[str] = None) -> List[dict]:
    """`api_key_env`: the variable the service reads its API key from (the spec's
    deployment.api_key_env); the pods get it from the secret `api_key_secret_name(model_name)`,
    without which the service refuses to start."""
    app = app_name(model_name)
    env = [{"name": "KEEL_PREDICTION_LOG_URL",
            "valueFrom": {"secretKeyRef": {"name": f"{app}-prediction-log", "key": "url"}}}]
    if api_key_env:
        env.append({"name": api_key_env, "valueFrom": {"secretKeyRef": {
            "name": api_key_secret_name(model_name), "key": API_KEY_SECRET_KEY}}})
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/version": f"v{version}",
              "app.kubernetes.io/managed-by": "keel"}
    probe = lambda path, delay: {"httpGet": {"path": path, "port": "http"},  # noqa: E731
                                 "initialDelaySeconds": delay, "periodSeconds": 10, "timeoutSeconds": 2}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": app, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1034},
                    "containers": [{
                        "name": "keel", "image": image,
                        "args": ["--host", "0.0.0.0", "--port", str(port)],
                        "ports": [{"name": "http", "containerPort": port}],
                        "env": env,
                        "readinessProbe": probe("/readyz", 5), "livenessProbe": probe("/livez", 15),
                        "resources": {"requests": {"cpu": cpu, "memory": memory},
                                      "limits": {"cpu": cpu, "memory": memory}},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": False},
                    }],
                },
            },
        },
    }
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": app, "namespace": namespace, "labels": labels},
               "spec": {"selector": {"app.kubernetes.io/name": app},
                        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    autoscaler = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                  "metadata": {"name": app, "namespace": namespace, "labels": labels},
                  "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
                           "minReplicas": replicas, "maxReplicas": max_replicas,
                           "metrics": [{"type": "Resource", "resource": {
                               "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}
    return [deployment, service, autoscaler]
