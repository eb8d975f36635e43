"""`hotline call` and `hotline sms` against a running local runtime (a LocalServer on a free
port, the real handlers behind it), through Typer's CliRunner: what a person reads."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from hotline_tools.cli import app
from hotline_tools.local.process import free_port
from hotline_tools.local.server import LocalServer
from tests.conftest import AOI, HARUTO, MIZUKI, ROOT, TAKUMI

GRANDMA = "+819066667777"
# Five people: the menu Takumi hears is wider than the console's 80 columns, so a prompt cut
# at the console width would show.
DIRECTORY = [
    {"name": "タクミ", "phone": TAKUMI},
    {"name": "ミズキ", "phone": MIZUKI},
    {"name": "ハルト", "phone": HARUTO},
    {"name": "アオイ", "phone": AOI},
    {"name": "おばあちゃん", "phone": GRANDMA},
]
MENU = "話したい相手の番号を押してください。1: ミズキ、2: ハルト、3: アオイ、4: おばあちゃん。"
runner = CliRunner()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer(port=0, directory=json.dumps(DIRECTORY).encode()).start()
    try:
        yield local
    finally:
        local.stop()


def spoken(output: str) -> list[str]:
    return [line.removeprefix("🔊 ") for line in output.splitlines() if line.startswith("🔊 ")]


def test_call_prints_every_prompt_whole_on_its_own_line(server):
    result = runner.invoke(app, ["call", TAKUMI, "--digits", "4", "--url", server.url])

    assert result.exit_code == 0, result.output
    assert len(MENU) * 2 > 80  # wider than the console: it must not be cut
    assert spoken(result.output) == [
        "お電話ありがとうございます。",
        MENU,
        "おばあちゃんさんに聞いてみます。電話を切ってお待ちください。",
    ]
    [contact] = re.findall(r"^contact (\S+)$", result.output, re.MULTILINE)
    [invite] = server.engine.sms(GRANDMA)  # the digit reached the flow: she was asked
    assert contact in {e["detail"]["data"]["request_id"] for e in server.engine.events()}
    assert "タクミさんが話したいそうです" in invite["body"]
    assert "attributes: registered=true" in result.output


def test_call_without_digits_hears_the_menu_twice_then_goodbye(server):
    result = runner.invoke(app, ["call", TAKUMI, "--url", server.url])

    assert result.exit_code == 0, result.output
    prompts = spoken(result.output)
    assert prompts[:2] == ["お電話ありがとうございます。", MENU]
    assert prompts[-1] == "お電話ありがとうございました。失礼いたします。"
    assert server.engine.sms() == []


def test_call_to_an_unknown_line_says_which_lines_there_are(server):
    result = runner.invoke(app, ["call", TAKUMI, "--line", "pizza", "--url", server.url])

    assert result.exit_code == 1
    assert '400: "line" must be one of benefits, hotline' in result.output


def test_sms_shows_each_message_whole_and_to_filters_by_recipient(server):
    runner.invoke(app, ["call", TAKUMI, "--digits", "1", "--url", server.url])
    runner.invoke(app, ["call", MIZUKI, "--digits", "2", "--url", server.url])
    [to_mizuki] = server.engine.sms(MIZUKI)
    [to_haruto] = server.engine.sms(HARUTO)

    everything = runner.invoke(app, ["sms", "--url", server.url])
    only_mizuki = runner.invoke(app, ["sms", "--to", MIZUKI, "--url", server.url])

    assert everything.exit_code == 0, everything.output
    lines = everything.output.splitlines()
    assert lines[0] == f"→ {MIZUKI}  {to_mizuki['sent_at']}"
    assert lines[1] == f"  {to_mizuki['body']}"  # Japanese and the whole link, on one line
    assert lines[2] == f"→ {HARUTO}  {to_haruto['sent_at']}"
    assert lines[3] == f"  {to_haruto['body']}"
    assert "タクミさんが話したいそうです。" in lines[1] and server.url + "/a/" in lines[1]
    assert "ミズキさんが話したいそうです。" in lines[3]

    assert only_mizuki.exit_code == 0, only_mizuki.output
    assert only_mizuki.output.splitlines() == lines[:2]


def test_sms_to_someone_nobody_texted_says_so(server):
    result = runner.invoke(app, ["sms", "--to", AOI, "--url", server.url])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"no SMS yet to {AOI}"


@pytest.mark.parametrize("command", [["call", TAKUMI], ["sms"], ["sms", "--to", MIZUKI]])
def test_without_a_running_server_it_says_so_and_exits_non_zero(command):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    result = runner.invoke(app, [*command, "--url", url])

    assert result.exit_code == 1
    assert f"no local hotline at {url}; start one with `make run`" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def environment_kept():
    """`hotline local` sets offline AWS credentials in its process: this one's come back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize(
    ("window", "constraint"),
    [("29", "is below its MinValue 30"), ("3601", "is above its MaxValue 3600")],
)
def test_local_refuses_an_answer_window_the_template_does_not_allow(
    environment_kept, window, constraint
):
    port = free_port()

    result = runner.invoke(app, ["local", "--port", str(port), "--answer-window", window])

    assert result.exit_code == 2, result.output
    assert f"template parameter AnswerWindowSeconds: '{window}' {constraint}" in result.output
    assert "Traceback" not in result.output
    with socket.socket() as probe:  # nothing was left listening
        probe.bind(("127.0.0.1", port))


def test_local_refuses_to_start_with_a_broken_action_in_a_flow(
    environment_kept, tmp_path, monkeypatch
):
    shutil.copy2(ROOT / "template.yaml", tmp_path / "template.yaml")
    shutil.copytree(ROOT / "contact_flow", tmp_path / "contact_flow")
    shutil.copytree(ROOT / "generated", tmp_path / "generated")
    shutil.copytree(ROOT / "tests/events", tmp_path / "tests/events")
    flow_file = tmp_path / "contact_flow/benefits.json"
    flow = json.loads(flow_file.read_text(encoding="utf-8"))
    flow["Actions"].append({"Identifier": "hold-music", "Type": "LoopPrompts", "Transitions": {}})
    flow_file.write_text(json.dumps(flow, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setitem(LocalServer.__init__.__kwdefaults__, "root", tmp_path)

    result = runner.invoke(app, ["local", "--port", str(free_port())])

    assert result.exit_code == 1, result.output  # a file is wrong, not the command line
    shown = " ".join(result.output.split())  # the console may wrap the message
    assert f"cannot start: flow {flow_file}: unsupported action Type 'LoopPrompts'" in shown
    assert "(Identifier 'hold-music')" in shown
    assert "Traceback" not in result.output
