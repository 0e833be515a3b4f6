"""The `lectern` command: every command and option explains itself in --help, and a path typed
relative to the working directory is shown resolved in every error (push, eval, ingest, and the
configuration table's writer)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from cli.main import build_parser, main
from tests.conftest import FIXTURES, ROOT, Stack


def without_help(parser: argparse.ArgumentParser, prog: str = "lectern") -> list[str]:
    """Every subcommand and option of ``parser``, at any depth, that has no help text."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            described = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                if not (described.get(name) or "").strip():
                    missing.append(f"{prog} {name}")
                missing += without_help(child, f"{prog} {name}")
        elif action.help is not argparse.SUPPRESS and not (action.help or "").strip():
            missing.append(f"{prog} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_the_walk_finds_what_lacks_help() -> None:
    parser = argparse.ArgumentParser(prog="toy")
    parser.add_argument("--loud", action="store_true")
    sub = parser.add_subparsers(dest="command")
    quiet = sub.add_parser("quiet")
    quiet.add_argument("name")
    sub.add_parser("told", help="has help").add_argument("--level", help="has help")
    assert without_help(parser, "toy") == ["toy --loud", "toy quiet", "toy quiet name"]


def test_every_command_and_option_has_help() -> None:
    assert without_help(build_parser()) == []


def test_lectern_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "ingest", "push", "gaps", "eval", "config-table"):
        assert f"\n    {command}" in out, command


# --- paths in errors ------------------------------------------------------------------------

def test_push_names_a_missing_folder_absolutely(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LECTERN_ADMIN_TOKEN", "t")
    code = main(["push", "no-such-site", "--url", "http://127.0.0.1:9", "--book", "b", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2 and report["exit_code"] == 2
    assert report["error"] == f"{tmp_path / 'no-such-site'} is not a folder"


def test_push_names_an_empty_site_absolutely(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LECTERN_ADMIN_TOKEN", "t")
    code = main(["push", "empty", "--url", "http://127.0.0.1:9", "--book", "b"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: {tmp_path / 'empty'} has no pages to push" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--docs", "no-such-docs"], "argument --docs: {cwd}/no-such-docs is not a folder"),
    (["--docs", ".", "--qa", "no-such.jsonl"], "argument --qa: {cwd}/no-such.jsonl is not a file"),
])
def test_eval_names_missing_paths_absolutely_before_any_server_starts(
        args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["eval", *args])
    assert exited.value.code == 2
    assert message.format(cwd=tmp_path) in capsys.readouterr().err


def test_eval_hands_on_resolved_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "qa.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["eval", "--docs", "docs", "--qa", "qa.jsonl", "--out", "out/r.json"])
    assert (args.docs, args.qa, args.out) == (str(tmp_path / "docs"), str(tmp_path / "qa.jsonl"),
                                              str(tmp_path / "out" / "r.json"))


@pytest.mark.parametrize(("cwd", "expected"), [
    # Inside the service's roots: refused as no folder, the field's absolute path added.
    (FIXTURES, ["INVALID_ARGUMENT: source_dir: is not a folder", f"  source_dir: {FIXTURES / 'no-such-book'}"]),
    # Outside them: the refusal names the path as it was sent, resolved.
    (None, ["PERMISSION_DENIED: {tmp}/no-such-book is outside LECTERN_INGEST_ROOTS"]),
])
async def test_ingest_names_the_folder_it_sent_absolutely(stack: Stack, tmp_path: Path, cwd: Path | None,
                                                          expected: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}", "LECTERN_INGEST_ADDR": stack.ingest.address,
           "COLUMNS": "60"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "ingest", "no-such-book", cwd=cwd or tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    lines = err.decode().splitlines()
    assert proc.returncode == 1, (out, err)
    assert lines[-len(expected):] == [e.format(tmp=tmp_path) for e in expected]


def test_config_table_rewrites_only_its_table(tmp_path: Path) -> None:
    from cli.config_table import render, rewrite

    page = tmp_path / "configuration.md"
    page.write_text("# Settings\n\n| Variable | Default | Meaning |\n| --- | --- | --- |\n| `OLD` | `1` | gone |\n"
                    "\nAfter the table.\n")
    assert rewrite(page) is True
    assert page.read_text() == f"# Settings\n\n{render()}\nAfter the table.\n"
    assert rewrite(page) is False
    bare = tmp_path / "bare.md"
    bare.write_text("no table here\n")
    with pytest.raises(ValueError, match=f"{bare} has no configuration table"):
        rewrite(bare)
