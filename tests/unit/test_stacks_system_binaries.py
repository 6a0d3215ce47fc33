"""A missing system binary skips a server test on a laptop, and fails it in CI
(KEEL_REQUIRE_SYSTEM_SERVICES=1, set by .ci/run)."""

import pytest

from tests.support.servers import require_binary


def test_a_missing_binary_skips_with_the_package_to_install(monkeypatch):
    monkeypatch.delenv("KEEL_REQUIRE_SYSTEM_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="install Debian's 'keel-no-such-package'"):
        require_binary("keel-no-such-binary", "keel-no-such-package")


def test_a_missing_binary_fails_when_ci_requires_the_services(monkeypatch):
    monkeypatch.setenv("KEEL_REQUIRE_SYSTEM_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="KEEL_REQUIRE_SYSTEM_SERVICES=1 requires it"):
        require_binary("keel-no-such-binary", "keel-no-such-package")


def test_a_present_binary_is_found():
    assert require_binary("sh", "dash").endswith("/sh")
