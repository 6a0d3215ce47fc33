"""A deployment explains against the version's validation rows, which its caller must pass: there is
no fallback to the probe rows (test data must not become the explanation background)."""

import pandas as pd
import pytest

from keel.deployment.deploy import deploy


def test_deploy_refuses_to_run_without_a_background():
    probe_rows = pd.DataFrame({"income": [1.0, 2.0]})
    with pytest.raises(TypeError, match="background"):
        deploy(None, 2, 1, {}, {}, probe_rows, None)
