"""The registry page steps on a real ZenML store: the page lists the registered versions with their
stage, gate outcome and approval, and it is pinned (a curated visualization) to the run, to the
pipeline and to the model, once per pipeline and model however often the steps run."""

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registered_model():
    from keel.registry import record_approval, record_evaluation, register_model_version

    name = "registry_view_model"
    metadata = {"model_family": "lightgbm", "primary_metric": "roc_auc",
                "validation_metrics": {"roc_auc": 0.83}, "test_metrics": {"roc_auc": 0.82}}
    first = register_model_version(name, "test model", metadata, [], None)
    second = register_model_version(name, "test model", metadata, [], None)
    gates = [{"gate": "roc_auc >= 0.75", "metric": "roc_auc", "value": 0.83, "passed": True}]
    record_evaluation(name, first, {"decision": "promote to staging", "passed": True, "failed": [],
                                    "gates": gates}, [], promote=True)
    record_evaluation(name, second, {"decision": "reject", "passed": False, "failed": ["roc_auc >= 0.9"],
                                     "gates": [{"gate": "roc_auc >= 0.9", "value": 0.83, "passed": False}]},
                      [], promote=False)
    record_approval(name, first, "ana", "ticket RISK-7")
    return name


def _registry_pipeline():
    from zenml import pipeline

    from steps.deployment.curate_registry_view import curate_registry_view_step
    from steps.deployment.registry_view import registry_view_step

    @pipeline(enable_cache=False)
    def registry_view_pipeline(model_name: str) -> None:
        curate_registry_view_step(registry_view_step(model_name), model_name)

    return registry_view_pipeline


def _curated(resource) -> list:
    return [v.display_name for v in resource.get_resources().visualizations]


def test_the_page_is_an_html_artifact_pinned_to_the_run_the_pipeline_and_the_model(registered_model):
    from zenml.client import Client

    pipeline = _registry_pipeline()
    pipeline(model_name=registered_model)
    run = pipeline(model_name=registered_model)  # a second run replaces the pipeline's and model's pin
    artifact = run.steps["registry_view_step"].outputs["model_registry_html"][0]
    page = artifact.load()
    assert type(page).__name__ == "HTMLString"
    assert "Model registry: registry_view_model" in page
    assert "<tr><td>v1</td><td>" in page and "staging" in page and "ana: ticket RISK-7" in page
    assert "failed: roc_auc &gt;= 0.9" in page and "all 1 passed" in page
    client = Client()
    title = f"Model registry: {registered_model}"
    assert _curated(client.get_pipeline_run(run.id)) == [title]
    assert _curated(client.get_pipeline(run.pipeline.id)).count(title) == 1  # one pin per model
    assert _curated(client.get_model(registered_model)) == [title]
    (curated,) = client.get_model(registered_model).get_resources().visualizations
    (visualization,) = client.get_artifact_version(artifact.id).visualizations
    assert curated.artifact_visualization_id == visualization.id  # the latest page, not the first run's
    assert str(visualization.type) in ("html", "VisualizationType.HTML")
