"""The stack commands' parsing and `stack show`, without ZenML: `--stack` is accepted before or
after any spec command; `stack show` prints the resolved file with secrets as references."""

import pytest

from keel.cli.main import build_parser, main


@pytest.mark.parametrize("argv", [["train", "--stack", "remote"], ["--stack", "remote", "train"],
                                  ["evaluate", "--stack", "remote"], ["--stack", "remote"]])
def test_stack_option_before_or_after_the_command(argv):
    assert build_parser().parse_args(argv).stack == "remote"


def test_no_stack_option_means_the_active_stack():
    assert build_parser().parse_args(["train"]).stack is None


def test_stack_show_resolves_the_environment_and_keeps_secret_references(monkeypatch, capsys):
    monkeypatch.setenv("KEEL_ZENML_SERVER_URL", "http://127.0.0.1:8765")
    monkeypatch.setenv("KEEL_S3_ENDPOINT_URL", "http://127.0.0.1:9876")
    assert main(["stack", "show", "remote"]) == 0
    shown = capsys.readouterr().out
    assert "url: http://127.0.0.1:8765" in shown and "endpoint_url: http://127.0.0.1:9876" in shown
    assert "key: '{{keel_s3.aws_access_key_id}}'" in shown


def test_stack_show_of_an_unknown_name_is_a_bad_argument(capsys):
    assert main(["stack", "show", "no-such-stack"]) == 2
    assert "no stack file for 'no-such-stack'" in capsys.readouterr().err


def test_an_unknown_stack_ends_the_command_before_any_pipeline(capsys):
    assert main(["train", "--stack", "no_such_stack"]) == 1
    err = capsys.readouterr().err
    assert "no such stack" in err and "registered: " in err
