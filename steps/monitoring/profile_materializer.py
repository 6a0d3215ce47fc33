"""keel's ZenML materializer for profiles: whylogs' binary format on the artifact store, an HTML
view for the dashboard, rows and columns as artifact metadata. (ZenML's own whylogs integration
pins whylogs~=1.0.5 and would fall back to pickle with whylogs 1.6.4.)"""

import os
from typing import Any, Dict, Type

from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer

from keel.monitoring.profiles import Profile, deserialize, serialize
from keel.monitoring.report import profile_html

PROFILE_FILE = "profile.bin"
VIEW_FILE = "profile.html"


class ProfileMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Profile,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.STATISTICS

    def load(self, data_type: Type[Any]) -> Profile:
        with self.artifact_store.open(os.path.join(self.uri, PROFILE_FILE), "rb") as handle:
            return deserialize(handle.read())

    def save(self, data: Profile) -> None:
        with self.artifact_store.open(os.path.join(self.uri, PROFILE_FILE), "wb") as handle:
            handle.write(serialize(data))

    def save_visualizations(self, data: Profile) -> Dict[str, VisualizationType]:
        path = os.path.join(self.uri, VIEW_FILE)
        with self.artifact_store.open(path, "w") as handle:
            handle.write(profile_html(data))
        return {path.replace("\\", "/"): VisualizationType.HTML}

    def extract_metadata(self, data: Profile) -> Dict[str, Any]:
        return {"rows": data.rows(), "columns": len(data.columns)}
