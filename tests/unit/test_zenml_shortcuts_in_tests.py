"""The test-only shortcuts tests/conftest.py applies inside ZenML give ZenML's own answers: a remembered
source hash equals a fresh one, a failure is raised each time, and each integration's remembered
installation check equals ZenML's uncached check."""

import pytest


def test_a_remembered_source_hash_is_zenmls_own_and_failures_are_not_remembered():
    from zenml.materializers.built_in_materializer import BuiltInMaterializer
    from zenml.materializers.pandas_materializer import PandasMaterializer
    from zenml.utils import source_code_utils

    remembered = source_code_utils.get_hashed_source_code
    computed = remembered.__wrapped__  # ZenML's function, unpatched
    assert remembered is not computed
    for cls in (PandasMaterializer, BuiltInMaterializer):
        assert remembered(cls) == computed(cls) == remembered(cls)
    assert remembered(PandasMaterializer) != remembered(BuiltInMaterializer)
    for _ in range(2):  # a builtin has no Python source: ZenML's TypeError, every time
        with pytest.raises(TypeError, match="Unable to compute the hash"):
            remembered(len)


def test_each_integrations_remembered_installation_check_is_zenmls_own():
    from zenml.integrations.integration import Integration
    from zenml.integrations.registry import integration_registry

    uncached = Integration.check_installation.__func__.__wrapped__
    integration_registry._initialize()
    # those that keep the base check (a few add a platform test of their own before it)
    plain = {name: cls for name, cls in integration_registry.integrations.items() if "check_installation" not in vars(cls)}
    answers = {name: cls.check_installation() for name, cls in plain.items()}
    assert answers == {name: uncached(cls) for name, cls in plain.items()}
    assert answers["sklearn"] and answers["pandas"]  # installed here; most of the ~70 are not
    assert not all(answers.values())
