"""Commands follow the user's spec (issue 13, item 4): without --config every spec-needing command takes
the project's one spec in configs/, else the last spec used here, and says which; the printed curl
example is a real record quoted for a POSIX shell; the service takes the spec's id column, and an entity
id beside `records`, as the entity id. The project here is a subscription-churn problem, nothing like
the credit demo."""

import argparse
import json
import shlex
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from keel.cli.main import build_parser, main
from keel.cli.options import DEFAULT_SPEC, LAST_SPEC, LAST_SPEC_ENV, SpecChoiceError, choose_spec
from keel.serving.payload import PayloadError, parse_records, record_model
from keel.spec import validate_spec

REGIONS = ["north", "o'higgins", "south"]


def _churn(name: str = "churn") -> dict:
    return {
        "problem": {"name": name, "objective": "Which accounts cancel next month.", "intended_users": "tests",
                    "business_metric": "none", "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "data": {"source": {"kind": "csv", "path": "accounts.csv"}, "id_column": "account",
                 "target": {"column": "churned", "positive": "yes", "negative": "no", "positive_label": "cancels"},
                 "features": {"seats": {"type": "integer", "min": 1, "max": 1000},
                              "tenure_months": {"type": "numeric", "min": 0, "nullable": True},
                              "region": {"type": "categorical", "categories": REGIONS}}},
    }


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder as the working directory; the last-spec record at its default place."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LAST_SPEC_ENV, raising=False)
    (tmp_path / "configs" / "examples").mkdir(parents=True)
    (tmp_path / "configs" / "examples" / "sample.yaml").write_text(yaml.safe_dump(_churn("an_example")))

    def add(name: str, problem: str) -> Path:
        path = tmp_path / "configs" / name
        path.write_text(yaml.safe_dump(_churn(problem)))
        return path

    return add


# --- which spec ---------------------------------------------------------------------------------------


def test_the_one_spec_of_the_project_else_the_last_used_else_the_demo(project, tmp_path):
    assert choose_spec(None).path == DEFAULT_SPEC  # nothing of its own, nothing used: the demo, said so
    assert "demo" in choose_spec(None).why
    churn = project("churn.yaml", "churn")
    chosen = choose_spec(None)
    assert chosen.path == Path("configs/churn.yaml") and "only spec" in chosen.why
    project("fraud.yml", "fraud")
    with pytest.raises(SpecChoiceError, match=r"2 specs in configs/ \(churn.yaml, fraud.yml\).*--config"):
        choose_spec(None)
    (tmp_path / LAST_SPEC).parent.mkdir()
    (tmp_path / LAST_SPEC).write_text(f"{tmp_path / 'configs' / 'fraud.yml'}\n")
    chosen = choose_spec(None)
    assert chosen.path == tmp_path / "configs" / "fraud.yml" and "last spec used here" in chosen.why
    assert choose_spec(churn).path == churn and choose_spec(churn).why is None  # --config wins, nothing said
    assert choose_spec(None, main_job=True).path == DEFAULT_SPEC  # the main job runs the demo


def test_a_last_spec_that_is_gone_is_not_taken(project, tmp_path):
    project("churn.yaml", "churn")
    project("fraud.yaml", "fraud")
    (tmp_path / LAST_SPEC).parent.mkdir()
    (tmp_path / LAST_SPEC).write_text(f"{tmp_path / 'deleted.yaml'}\n")
    with pytest.raises(SpecChoiceError):
        choose_spec(None)


def test_a_last_spec_that_is_gone_is_never_replaced_by_the_demo(project, tmp_path):
    """helper-50: with no spec in configs/, a deleted last spec fell back to the credit demo, so `train`
    would have trained the demo instead of the user's model."""
    (tmp_path / LAST_SPEC).parent.mkdir()
    (tmp_path / LAST_SPEC).write_text(f"{tmp_path / 'mine.yaml'}\n")
    with pytest.raises(SpecChoiceError, match=r"mine.yaml, is gone \(moved or deleted"):
        choose_spec(None)
    assert choose_spec(None, main_job=True).path == DEFAULT_SPEC  # the main job runs the demo, as always


REQUIRED = {"approve": ["--model", "churn", "--version", "1", "--by", "me", "--reason", "ticket"],
            "lineage": ["--model-version", "1"], "explain": ["--prediction", "r-1"],
            "who-served": ["--at", "2026-01-01T00:00:00Z"], "score": ["--input", "book.csv", "--output", "scores.parquet"],
            "decide": ["r-1:0", "--decision", "favourable", "--reason", "documents checked"]}


def _subcommands(parser):
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found[0].choices if found else {}


def _spec_commands():
    """Every command (and action) that reads a spec, with the arguments it requires, from the parser
    itself: a command added later is covered too."""
    found = []

    def walk(prefix, parser):
        children = _subcommands(parser)
        if children:
            for name, child in children.items():
                walk([*prefix, name], child)
        elif parser._defaults.get("needs_spec", True) and "handler" in parser._defaults:
            found.append([*prefix, *REQUIRED.get(prefix[-1], [])])

    walk([], build_parser())
    return found


SPEC_COMMANDS = _spec_commands()


def test_the_list_of_spec_commands_is_complete():
    names = {" ".join(a for a in argv if not a.startswith("-") and a not in sum(REQUIRED.values(), [])) for argv in SPEC_COMMANDS}
    assert {"train", "runs", "evaluate", "deploy", "serve", "rollback", "approve", "check", "validate", "monitor",
            "audit verify", "audit log", "audit who-served", "lineage", "reproduce", "data versions", "docs",
            "explain"} <= names
    assert not names & {"stack apply", "dashboard", "spec reference", "init"}  # these need no problem spec


@pytest.mark.parametrize("argv", SPEC_COMMANDS, ids=[" ".join(argv[:2]) for argv in SPEC_COMMANDS])
def test_every_spec_command_follows_the_projects_spec_and_says_so(argv, project, monkeypatch, capsys):
    import keel.cli.main

    project("churn.yaml", "churn")
    seen = {}

    def stop_before_the_work(args):
        seen["config"] = args.config
        return 99

    monkeypatch.setattr(keel.cli.main, "before_command", stop_before_the_work)
    assert main(argv) == 99
    assert seen["config"] == Path("configs/churn.yaml")
    assert "keel: spec configs/churn.yaml (the only spec in configs/" in capsys.readouterr().err


def test_runs_lists_the_users_problem_not_the_demo(project, capsys):
    project("churn.yaml", "churn")
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "no training runs of 'churn'" in out and "credit_risk" not in out


def test_a_spec_given_once_is_used_next_time_and_validate_does_not_count(project, tmp_path, capsys):
    churn, fraud = project("churn.yaml", "churn"), project("fraud.yaml", "fraud")
    assert main(["validate", "--config", str(churn)]) == 0
    assert not (tmp_path / LAST_SPEC).exists()  # validating a file is not working with it
    assert main(["validate"]) == 2  # two specs, none used yet
    assert "2 specs in configs/" in capsys.readouterr().err
    assert main(["runs", "--config", str(fraud)]) == 0
    assert (tmp_path / LAST_SPEC).read_text().strip() == str(fraud.resolve())
    capsys.readouterr()
    assert main(["validate"]) == 0
    captured = capsys.readouterr()
    assert "problem 'fraud'" in captured.out and "the last spec used here" in captured.err


def test_help_and_validation_stay_instant_and_need_no_spec(project, capsys):
    project("churn.yaml", "churn")
    project("fraud.yaml", "fraud")  # ambiguous: --help must not care
    started = time.perf_counter()
    with pytest.raises(SystemExit) as stopped:
        main(["runs", "--help"])
    assert stopped.value.code == 0 and "--config" in capsys.readouterr().out
    assert main(["validate", "--config", "configs/churn.yaml"]) == 0
    assert time.perf_counter() - started < 2.0


# --- the request contract: the spec's id column and an entity id beside records ------------------------


@pytest.fixture
def contract():
    return record_model(validate_spec(_churn()).data)


FEATURES = {"seats": 4, "tenure_months": None, "region": "o'higgins"}


def test_the_id_column_is_the_entity_id(contract):
    [record] = parse_records({**FEATURES, "account": "acct-7"}, contract)
    assert record.entity_id == "acct-7" and "account" not in record.model_dump(exclude={"entity_id"})
    [same] = parse_records({**FEATURES, "account": "acct-7", "entity_id": "acct-7"}, contract)
    assert same.entity_id == "acct-7"
    with pytest.raises(PayloadError) as refused:
        parse_records({**FEATURES, "account": "acct-7", "entity_id": "acct-8"}, contract)
    [error] = refused.value.errors
    assert refused.value.status == 422 and error["field"] == "account" and "given twice" in error["problem"]


def test_an_entity_id_beside_records_names_the_one_record(contract):
    for key in ("entity_id", "account"):
        [record] = parse_records({"records": [FEATURES], key: "acct-1"}, contract)
        assert record.entity_id == "acct-1"
    with pytest.raises(PayloadError) as refused:
        parse_records({"records": [FEATURES, FEATURES], "entity_id": "acct-1"}, contract)
    [error] = refused.value.errors  # one clear error, not every field of a phantom record
    assert error["field"] == "entity_id" and "records[i].entity_id" in error["problem"]
    with pytest.raises(PayloadError) as refused:
        parse_records({"records": [FEATURES], "tenure_months": 3}, contract)
    assert [e["field"] for e in refused.value.errors] == ["tenure_months"]
    assert "beside records" in refused.value.errors[0]["problem"]
    with pytest.raises(PayloadError) as refused:
        parse_records({"records": [{**FEATURES, "seats": 0}], "entity_id": "acct-1"}, contract)
    assert [e["field"] for e in refused.value.errors] == ["records[0].seats"]


# --- the curl example -----------------------------------------------------------------------------------


def _validation_rows() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"account": ["acct-0", "acct-1", "acct-2"], "seats": [0.0, 12.0, 7.0],  # row 0: out of range
                         "tenure_months": [3.5, np.nan, 2.0], "region": pd.Categorical(["north", "o'higgins", "south"]),
                         "churned": rng.integers(0, 2, 3)})


def test_the_curl_example_is_a_real_record_quoted_for_a_shell():
    from keel.cli.deploy import curl_example
    from keel.lifecycle.deployment import example_record

    spec = validate_spec({**_churn(), "deployment": {"api_key_env": "CHURN_KEY"}})
    record = example_record(spec, _validation_rows())
    assert record == {"seats": 12, "tenure_months": None, "region": "o'higgins", "account": "acct-1"}
    command = curl_example("http://127.0.0.1:3000", spec, record)
    words = shlex.split(command, posix=True)
    assert words[:5] == ["curl", "-s", "-X", "POST", "http://127.0.0.1:3000/predict"]
    assert json.loads(words[words.index("-d") + 1]) == record
    assert words[-2:] == ["-H", "X-API-Key: $CHURN_KEY"] and '"X-API-Key: $CHURN_KEY"' in command


def test_no_acceptable_record_is_said_not_invented():
    from keel.lifecycle.deployment import example_record

    rows = _validation_rows()
    rows["seats"] = 0.0  # out of the spec's range on every row
    with pytest.raises(LookupError, match="request contract"):
        example_record(validate_spec(_churn()), rows)
