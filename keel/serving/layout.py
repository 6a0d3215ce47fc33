"""The deployment folder's file names and the service's route groups: what the service, the bundle
writer and the CLI share, in a module that imports nothing, so BentoML's supervisor process (which
imports the service module only to read its settings) does not load the scorer's libraries."""

DEPLOYMENT_FILE = "deployment.json"
ROUTING_FILE = "routing.json"
MAX_BODY_BYTES = 1_000_000  # a request body larger than this is refused with 413 (the bundle may set another)
# Probes answer without the API key: an orchestrator's (Kubernetes, a load balancer) carry none.
PROBE_PATHS = frozenset({"/livez", "/healthz", "/readyz"})
# Scoring checks the key itself and answers a missing one with a field-level 401 like any bad request.
SCORING_PATHS = frozenset({"/predict", "/explain"})


def gated(path: str) -> bool:
    """Whether the API key may guard `path` here: every route but probes and scoring (which checks
    the key itself, answering like any bad request)."""
    return path not in PROBE_PATHS and path not in SCORING_PATHS
