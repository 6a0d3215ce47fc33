from zenml import get_step_context, step
from zenml.client import Client
from zenml.enums import VisualizationResourceTypes
from zenml.types import HTMLString

from keel.artifacts import Artifact


@step(enable_cache=False)
def curate_registry_view_step(model_registry_html: HTMLString, model_name: str) -> None:
    """Pin the registry page (a curated visualization) to this run, to the pipeline and to the model,
    replacing the page an earlier run pinned to the pipeline and the model."""
    client = Client()
    context = get_step_context()
    (artifact,) = context.inputs[Artifact.MODEL_REGISTRY_HTML]
    (visualization, *_) = client.get_artifact_version(artifact.id, hydrate=True).visualizations
    title = f"Model registry: {model_name}"
    run = client.get_pipeline_run(context.pipeline_run.id)
    pipeline = client.get_pipeline(run.pipeline.id)
    targets = [(VisualizationResourceTypes.PIPELINE_RUN, run.id, []),
               (VisualizationResourceTypes.PIPELINE, pipeline.id, pipeline.get_resources().visualizations)]
    try:
        model = client.get_model(model_name)
        targets.append((VisualizationResourceTypes.MODEL, model.id, model.get_resources().visualizations))
    except KeyError:  # no version registered yet: the page says so; nothing to pin it to
        pass
    for resource_type, resource_id, earlier in targets:
        for curated in earlier:
            if curated.display_name == title:
                client.delete_curated_visualization(curated.id)
        client.create_curated_visualization(visualization.id, resource_id=resource_id, resource_type=resource_type,
                                            display_name=title)
