"""What the local runtime checks from the template and the flows when it starts: a parameter
outside the template's own constraints is refused, a broken contact-flow action no call reaches
stops it (and leaves its port free), and its lines are the template's contact flows."""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hotline_tools.local.engine import LocalHotline
from hotline_tools.local.flow import FlowError
from hotline_tools.local.server import LocalServer
from hotline_tools.local.template import TemplateError
from tests.conftest import ROOT, TAKUMI
from tests.integration import project_copy
from tests.integration.project_copy import edit_template, post_json

# Shared fixtures: pytest finds a fixture by its name in the test module.
project, started = project_copy.project, project_copy.started


# --- template parameters: the template's constraints are the one check ----------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"answer_window": 29}, r"AnswerWindowSeconds: '29' is below its MinValue 30"),
        ({"answer_window": 3601}, r"AnswerWindowSeconds: '3601' is above its MaxValue 3600"),
        ({"parameters": {"SmsProvider": "pigeon"}}, r"SmsProvider: 'pigeon' is not one of"),
        ({"base_url": "http://127.0.0.1:3000/x"}, r"PublicBaseUrl: .* AllowedPattern"),
    ],
)
def test_a_parameter_outside_the_templates_constraints_is_refused(options, message):
    with pytest.raises(TemplateError, match=message):
        LocalHotline(root=ROOT, **options)


def test_the_constraints_are_the_templates_own(project, started):
    edit_template(project, "MinValue: 30", "MinValue: 5", after="  AnswerWindowSeconds:\n")
    local = started(project, answer_window=5)

    local.call(TAKUMI)

    assert local.stack.functions["CallRequestFunction"].environment["ANSWER_WINDOW_SECONDS"] == "5"


# --- contact flows are checked whole at startup ----------------------------------------------


def add_unreached_action(root: Path, action: dict[str, Any]) -> Path:
    """An action no call reaches, appended to the hotline flow."""
    path = root / "contact_flow/hotline.json"
    flow = json.loads(path.read_text(encoding="utf-8"))
    flow["Actions"].append(action)
    path.write_text(json.dumps(flow, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            {"Identifier": "queue-it", "Type": "TransferContactToQueue", "Transitions": {}},
            r"unsupported action Type 'TransferContactToQueue' \(Identifier 'queue-it'\)",
        ),
        (
            {
                "Identifier": "say-bye",
                "Type": "MessageParticipant",
                "Parameters": {"Text": "bye"},
                "Transitions": {"NextAction": "nowhere"},
            },
            r"action 'say-bye' \(MessageParticipant\) transitions to unknown action 'nowhere'",
        ),
    ],
)
def test_a_broken_action_no_call_reaches_stops_the_runtime_at_startup(project, action, message):
    path = add_unreached_action(project, action)

    with pytest.raises(FlowError, match=message) as raised:
        LocalHotline(root=project)
    assert str(raised.value).startswith(f"flow {path}: ")

    # The server refuses to start too, and leaves its port free.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FlowError, match=message):
        LocalServer(port=port, root=project)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


# --- the lines are the template's contact flows ---------------------------------------------


def test_the_shipped_flows_keep_their_numbers():
    assert LocalHotline(root=ROOT).lines == {
        "hotline": "+815012340001",
        "benefits": "+815012340002",
    }


def test_a_new_flow_is_a_new_line_and_a_removed_one_is_gone(project):
    shutil.copy2(project / "contact_flow/hotline.json", project / "contact_flow/support.json")
    (project / "contact_flow/benefits.json").unlink()
    server = LocalServer(port=0, root=project).start()
    try:
        with urllib.request.urlopen(server.url + "/_local/directory", timeout=30) as response:
            lines = json.loads(response.read())["lines"]
        status, answer = post_json(
            server.url + "/_local/calls", {"from": TAKUMI, "line": "support"}
        )
        gone, error = post_json(server.url + "/_local/calls", {"from": TAKUMI, "line": "benefits"})
    finally:
        server.stop()

    assert lines == {"hotline": "+815012340001", "support": "+815012340003"}
    assert status == 200
    assert answer["prompts"] == [
        "お電話ありがとうございます。",
        "ミズキさんに聞いてみます。電話を切ってお待ちください。",
    ]
    assert gone == 400
    assert error["error"] == '"line" must be one of hotline, support'
