"""The command line's help: every flag explained, its real default shown
once, `tune --help` without the flags tune refuses, and `--version`."""

import re
import subprocess
import sys

import pytest

import keras_deeprnn
from keras_deeprnn import cli

pytestmark = pytest.mark.any_backend  # no backend changes what this file tests

COMMANDS = ("train", "tune", "evaluate", "generate", "datasets")


def help_text(*argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def flag_entries(text):
    """`{"--flag": help}` from an argparse help page: an entry starts two
    spaces in; its help starts at column 24, on the same line or the next,
    and wraps at that indent."""
    entries, current = {}, None
    for line in text.splitlines():
        if re.match(r"^  \S", line):
            same_line = len(line) > 24 and line[22:24] == "  " and line[24] != " "
            invocation = line[2:22] if same_line else line[2:]
            names = re.findall(r"--[\w-]+", invocation) or [invocation.split()[0]]
            current = names[0]
            entries[current] = line[24:].strip() if same_line else ""
        elif current and line.startswith(" " * 24):
            entries[current] = (entries[current] + " " + line.strip()).strip()
        else:
            current = None
    return entries


def parser_actions(command):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    return sub.choices[command]._actions


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_has_help_and_one_real_default(command, capsys):
    entries = flag_entries(help_text(command, capsys=capsys))
    shown = [a for a in parser_actions(command) if a.help != "==SUPPRESS=="]
    for action in shown:
        name = action.option_strings[0] if action.option_strings else action.dest
        if name in ("-h", "--help"):
            continue
        name = next((o for o in action.option_strings if o.startswith("--")), name)
        assert name in entries, f"{command} {name} is not on the help page"
        text = entries[name]
        assert text, f"{command} {name} has no help"
        assert "(default: None)" not in text, f"{command} {name}: {text}"
        assert len(re.findall(r"\bdefault\b", text)) <= 1, f"{command} {name}: {text}"
        default = action.default
        if action.option_strings and default not in (None, False, [], "==SUPPRESS=="):
            # the real default, in the help
            assert re.search(r"\bdefault:? ", text), f"{command} {name}: {text}"
        if action.option_strings and default is None and action.nargs != 0:
            assert "default" in text, f"{command} {name} says nothing of its default: {text}"


def test_the_printed_defaults_are_the_parsers(capsys):
    entries = flag_entries(help_text("train", capsys=capsys))
    defaults = vars(cli.build_parser().parse_args(["train"]))
    for flag in ("--epochs", "--batch-size", "--learning-rate", "--seed", "--units",
                 "--dropout", "--architecture", "--optimizer"):
        value = defaults[flag[2:].replace("-", "_")]
        assert f"(default: {value})" in entries[flag], (flag, entries[flag])
    assert "(default: the architecture's)" in entries["--num-layers"]


def test_tune_help_lists_only_what_tune_takes(capsys):
    text = help_text("tune", capsys=capsys)
    entries = flag_entries(text)
    for refused in ("--run-dir", "--optimizer", "--momentum", "--lr-patience",
                    "--generate-frames", "--temperature", "--tensorboard", "--tokenization",
                    "--seq-len", "--bidirectional"):
        assert refused not in entries, refused
        assert refused not in text.split("options:")[0], f"{refused} in the usage line"
    for taken in ("--units", "--learning-rate", "--max-trials", "--batch-size", "--epochs"):
        assert taken in entries, taken
    # a model flag not given is searched, not the train default
    assert entries["--units"].endswith("(default: searched)")
    assert entries["--learning-rate"].endswith("(default: searched)")
    assert "(default: 200)" not in entries["--units"]


def test_a_hidden_train_flag_given_to_tune_is_still_refused_with_its_reason(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tune", "--optimizer", "sgd"])
    assert exit_info.value.code == 2
    assert "--optimizer: train only" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"keras-deeprnn {keras_deeprnn.__version__}"


def test_the_installed_command_prints_the_version_of_the_installed_package():
    from importlib import metadata

    installed = metadata.version("keras-deeprnn")
    assert installed == keras_deeprnn.__version__  # pyproject.toml and __init__ agree
    result = subprocess.run([sys.executable, "-m", "keras_deeprnn", "--version"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"keras-deeprnn {installed}"


@pytest.mark.parametrize("command", ("train", "tune", "evaluate", "generate"))
def test_every_command_that_reads_a_data_set_takes_the_same_cache_dir(command):
    cache_dir = [a for a in parser_actions(command) if a.dest == "cache_dir"]
    assert [(a.option_strings, a.default) for a in cache_dir] == [(["--cache-dir"], None)]
    assert "$KERAS_DEEPRNN_CACHE" in cache_dir[0].help
