"""Test isolation: ZenML state lives in a temporary folder, and nothing phones home.

Set at import time, before any test module imports ZenML. Each pytest process (the session, or each
pytest-xdist worker under `bootstrap.py test`'s `-n`) has its own folder: its BentoML home and
last-spec file; inside it each test module gets a ZenML store of its own (`_own_zenml_store`), so a
module never sees another module's models, versions or runs, whichever worker runs it and in which
order. Under xdist (`--dist loadfile`) a module's tests stay together on one worker (its module-scoped
fixtures, e.g. a model trained once for the module, are built once), except the modules listed in
HANDED_OUT_BY_TEST.
"""

import functools
import gc
import importlib.abc
import importlib.machinery
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# pytest imports this file as `conftest`; the tests import it as `tests.conftest`. Two names would run it
# twice: two ZenML homes and template stores per process, the second never removed (pytest_sessionfinish
# runs only on pytest's). The first import is the only one.
if __name__ == "conftest":
    sys.modules.setdefault("tests.conftest", sys.modules[__name__])

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1, ... under pytest-xdist


def _memory_backed_temp() -> None:
    """Temporary files (ZenML stores, pytest's tmp_path, the commands tests start) in a RAM file system
    where there is one: each ZenML store write is an SQLite commit with an fsync, about 2.5 s of a
    pipeline run's 20 s on this machine's disk under load and nothing on tmpfs. A killed process loses
    no written data on either, so the crash tests test the same thing. KEEL_TEST_TMPDIR chooses another."""
    chosen = os.environ.get("KEEL_TEST_TMPDIR") or "/dev/shm"
    if not os.path.isdir(chosen) or not os.access(chosen, os.W_OK) or shutil.disk_usage(chosen).free < 4 << 30:
        return
    folder = os.path.join(chosen, "keel-tests")
    os.makedirs(folder, exist_ok=True)
    os.environ["TMPDIR"] = folder  # inherited by the xdist workers and the commands the tests start
    tempfile.tempdir = folder


def _one_thread_per_numeric_library() -> None:
    """One BLAS/OpenMP thread in each test process and in the commands and servers the tests start.
    The suite already runs a process per core (pytest-xdist); each library's own pool of a thread per
    core then only contends, and OpenBLAS's idle threads poll (system CPU). Measured on this 2-core
    machine, the unit tests under `-n 2`: 204 -> 166 CPU-s (19.0 -> 9.3 s system), 117 -> 102 s; in a
    second pair, run in the other order an hour later, 240 -> 198 CPU-s, 136 -> 119 s.
    keel fixes LightGBM's threads itself (`training.threads`); this reaches numpy and scikit-learn.
    Set before numpy is imported anywhere (the libraries read it as they load); a variable the caller
    set wins."""
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


_memory_backed_temp()
_one_thread_per_numeric_library()
_ZENML_HOME = tempfile.mkdtemp(prefix=f"keel-tests-{WORKER}-")
os.environ["ZENML_CONFIG_PATH"] = os.path.join(_ZENML_HOME, "config")
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ["ZENML_LOGGING_VERBOSITY"] = "WARN"
os.environ["WHYLOGS_NO_ANALYTICS"] = "True"
os.environ["BENTOML_DO_NOT_TRACK"] = "True"
os.environ["BENTOML_HOME"] = os.path.join(_ZENML_HOME, "bentoml")
os.environ.pop("ZENML_STORE_URL", None)
os.environ["KEEL_LAST_SPEC"] = os.path.join(_ZENML_HOME, "last_spec")  # commands record the spec they used

# ZenML finds its source root from the __main__ module's file. In `python -m pytest` that is pytest's
# __main__.py; an xdist worker's __main__ is execnet's bootstrap, which has no file ("Unable to determine
# source root"). The worker gets the same file, so a worker resolves sources exactly as a plain run does.
_main = sys.modules.get("__main__")
if WORKER != "main" and _main is not None and not getattr(_main, "__file__", None):
    import pytest.__main__ as _pytest_main

    _main.__file__ = _pytest_main.__file__

# The longest modules (measured, tens of seconds to minutes each) are handed out first so that no worker
# is left with one of them at the end while the other idles. Only the order changes, under xdist only.
LONGEST_FIRST = [
    "tests/integration/test_evaluation_fails_closed.py",  # ~5 min, one test: the longest single piece of work
    "tests/integration/test_foreign_data.py",  # 8 lifecycles, ~55 s each, handed out one by one
    "tests/integration/test_deployment_pipeline.py",
    "tests/integration/test_cli.py",
    "tests/integration/test_evaluation_pipeline.py",
    "tests/integration/remote/test_remote_stack.py",
]

# In-process pipeline runs too read the installed packages' metadata once per process, and collect
# garbage with the thresholds of a command's process (run.py), as commands do. A worker's heap grows
# with every module's ZenML objects; with CPython's defaults each full collection scans it all.
from keel.cli.main import COLLECTOR_THRESHOLDS, read_installed_packages_once  # noqa: E402

read_installed_packages_once()
gc.set_threshold(*COLLECTOR_THRESHOLDS)


def _no_schema(step_or_pipeline):
    """ZenML's own outcome when a step's or a pipeline's parameter schema cannot be generated (it logs and
    returns None)."""
    return None


def _without_parameter_schemas(module) -> None:
    """ZenML compiles, for every step of every run, a JSON schema of the step's parameters, kept with the
    run for the dashboard's run templates. keel's steps take spec sections (pydantic models of hundreds
    of fields): about a quarter of a cached evaluation run's CPU (13.6 -> 10.0 s measured, one version
    evaluated alternately with and without, in one process). No test reads them (no run template is
    made): not computed in tests."""
    module.BaseStep._compute_parameter_schema = _no_schema


def _without_input_schemas(module) -> None:
    """Likewise each run's pipeline spec carries a JSON schema of the pipeline's parameters (the whole spec
    model), for ZenML's deployers, which serve a pipeline over HTTP (~0.1 s a run). keel deploys no pipeline
    that way and no test reads it: ZenML's own outcome when the schema cannot be generated (None)."""
    module.Pipeline._compute_input_schema = _no_schema


def _source_hashes_once(module) -> None:
    """Every step of every run hashes the source of each of its outputs' materializer classes, through
    inspect.getsource, which parses the class's whole module each time (~5 ms a class; 5.4 s of the 78 s
    of test_evaluation_fails_closed's 20 evaluation runs). A class's source cannot change under a running
    process, so the same hash is computed once per class (a failure is not remembered: raised again)."""
    compute = module.get_hashed_source_code
    hashes: dict = {}

    def get_hashed_source_code(value):
        try:
            return hashes[value]
        except KeyError:
            hashes[value] = compute(value)
            return hashes[value]
        except TypeError:  # an unhashable object: not remembered
            return compute(value)

    get_hashed_source_code.__wrapped__ = compute
    module.get_hashed_source_code = get_hashed_source_code


def _installation_checked_once(module) -> None:
    """Each pipeline compilation checks, for each of ZenML's ~70 integrations, whether its requirements are
    installed (package metadata read each time: ~0.1 s a compilation). Nothing is installed while the tests
    run, so each integration's answer is read once per process."""
    check = module.Integration.check_installation.__func__
    module.Integration.check_installation = classmethod(functools.lru_cache(maxsize=None)(check))


# Test-only shortcuts inside ZenML: work whose result no test reads, or the same result computed again.
# Applied as each module loads: importing ZenML here would give every unit-test module a ZenML store of
# its own (see _own_zenml_store). Commands the tests start as subprocesses run unpatched, as users' do.
PATCHED_ON_LOAD = {
    "zenml.steps.base_step": _without_parameter_schemas,
    "zenml.pipelines.pipeline_definition": _without_input_schemas,
    "zenml.utils.source_code_utils": _source_hashes_once,
    "zenml.integrations.integration": _installation_checked_once,
}


class _PatchedOnLoad(importlib.abc.MetaPathFinder):
    """Applies PATCHED_ON_LOAD's patch to its module right after the module's own code ran."""

    def find_spec(self, name, path, target=None):
        patch = PATCHED_ON_LOAD.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module

        def load_and_patch(module):
            load(module)
            patch(module)

        spec.loader.exec_module = load_and_patch  # this spec's own loader instance
        return spec


for _name, _patch in PATCHED_ON_LOAD.items():
    if _name in sys.modules:
        _patch(sys.modules[_name])
sys.meta_path.insert(0, _PatchedOnLoad())

import keel  # noqa: E402,F401


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_ZENML_HOME, ignore_errors=True)


def _module_path(item) -> str:
    return item.nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    if hasattr(config, "workerinput"):  # an xdist worker: the order it reports is the order work is handed out
        rank = {module: index for index, module in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(_module_path(item), len(rank)))  # stable: modules stay contiguous


# Under xdist a module's tests run on one worker, in one go (--dist loadfile: its module fixtures are
# built once). A module whose tests share no module fixture and each run a whole lifecycle (about a
# minute) is handed out test by test instead, so both workers share it rather than one running it all.
HANDED_OUT_BY_TEST = {"tests/integration/test_foreign_data.py"}


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent under `-p no:xdist`
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadfile":
        return None  # xdist's own scheduler for the mode asked for
    from xdist.scheduler import LoadFileScheduling

    class ByFileExceptListedModules(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return nodeid if module in HANDED_OUT_BY_TEST else module

    return ByFileExceptListedModules(config, log)


def _use_zenml_config(folder: Path) -> None:
    """Point this process's ZenML client at the store in `folder` (created on first use)."""
    os.environ["ZENML_CONFIG_PATH"] = str(folder)
    if "zenml.client" in sys.modules:  # drop the singletons that hold the previous store
        from zenml.client import Client
        from zenml.config.global_config import GlobalConfiguration

        import zenml.stack.stack

        GlobalConfiguration._reset_instance()
        Client._reset_instance()
        # ZenML caches Stack objects by (stack id, updated) in the process. The modules' stores are
        # copies of one template, so their default stacks share ids: a cached Stack would keep the
        # previous store's artifact store path (artifacts written there, then not found by commands).
        zenml.stack.stack._STACK_CACHE.clear()


_TEMPLATE_STORE = Path(_ZENML_HOME) / "stores" / "_template"


def new_zenml_store(folder: Path) -> str:
    """A new, empty ZenML store in `folder` (returned as the ZENML_CONFIG_PATH of the commands a test
    starts): a copy of this process's template store, made once.
    Creating a store registers ZenML's ~80 stack component flavors (3-6 s of CPU here), once per test
    module before; a copy is a file copy. The copy is what ZenML would have made: its config's paths
    name `folder`, and the default artifact store's path is derived from the config folder at run time
    (the database holds no path)."""
    if folder.exists():  # made by an earlier command of the test
        return str(folder)
    if not (_TEMPLATE_STORE / "config.yaml").exists():
        from zenml.client import Client

        in_use = Path(os.environ["ZENML_CONFIG_PATH"])
        _use_zenml_config(_TEMPLATE_STORE)
        Client().active_stack_model  # creates the store, its default project and stack
        Client().zen_store.engine.dispose()  # its database file is copied: no connection left open
        _use_zenml_config(in_use)
    shutil.copytree(_TEMPLATE_STORE, folder)
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace(str(_TEMPLATE_STORE), str(folder)))
    return str(folder)


@pytest.fixture(scope="module", autouse=True)
def _own_zenml_store(request):
    """Each test module its own ZenML store: modules reuse model names (credit_risk, ...), and under
    xdist their order and neighbours vary. Made here, before the module's tests, when ZenML is loaded
    (collection imports it): made inside a test, ZenML's 'Setting the global active stack' warning
    would land in that test's captured stderr."""
    name = request.node.nodeid.split("::", 1)[0].replace("/", "_").removesuffix(".py") or "session"
    folder = Path(_ZENML_HOME) / "stores" / name
    if "zenml.client" in sys.modules:
        new_zenml_store(folder)
    _use_zenml_config(folder)
    yield
    _use_zenml_config(Path(_ZENML_HOME) / "config")


@pytest.fixture(autouse=True)
def _own_last_spec(tmp_path_factory, monkeypatch):
    """Each test (and the commands it starts) records the spec it used apart: a command without --config
    takes the last spec used, which must not be another test's."""
    monkeypatch.setenv("KEEL_LAST_SPEC", str(tmp_path_factory.mktemp("last-spec") / "last_spec"))


@pytest.fixture(scope="session")
def zenml_home() -> Path:
    return Path(_ZENML_HOME)


@pytest.fixture
def default_spec():
    from keel.spec import load_spec

    return load_spec(ROOT / "configs" / "credit_risk.yaml")


@pytest.fixture
def small_spec():
    """The default spec on 2,000 generated rows with a short search: quick to train."""
    from keel.spec import load_spec

    return load_spec(ROOT / "configs" / "credit_risk.yaml",
                     ["data.source.rows=2000", "training.candidate.trials=2",
                      "training.candidate.params.n_estimators=40"])
