"""The environment model and what Deps builds from it: the SMS provider the template's
SmsProvider parameter chooses, sending from SmsOriginationIdentity. AWS clients sit behind
botocore's Stubber (requests checked against the real service model, nothing sent). Every
handler keeps its Deps one way, `deps = handler_deps(needs=...)`."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from hotline_core.runtime import deps as deps_module
from hotline_core.runtime.deps import Deps, handler_deps
from hotline_core.runtime.observability import metrics
from hotline_core.settings import Settings, SettingsError

BASE = {"TABLE_NAME": "requests", "EVENT_BUS_NAME": "bus"}
TO, BODY = "+819011112222", "ミズキさんが話せます。+817033334444 に電話してください"


@pytest.fixture
def stubs(monkeypatch):
    """SNS and End User Messaging clients with no responses queued: any call Deps makes that
    a test did not expect fails."""
    clients = {
        service: boto3.client(service, region_name="ap-northeast-1")
        for service in ("sns", "pinpoint-sms-voice-v2")
    }
    stubbers = {service: Stubber(c) for service, c in clients.items()}
    for stubber in stubbers.values():
        stubber.activate()
    monkeypatch.setattr(deps_module, "client", lambda service, *_, **__: clients[service])
    yield stubbers
    for stubber in stubbers.values():
        stubber.deactivate()
    metrics.clear_metrics()  # SmsSent, counted outside any handler


def test_end_user_messaging_is_chosen_and_sends_from_the_origination_identity(stubs):
    settings = Settings.from_env(
        {
            **BASE,
            "SMS_PROVIDER": "end-user-messaging",
            "SMS_ORIGINATION_IDENTITY": "pool-0123456789abcdef",
        }
    )
    stubs["pinpoint-sms-voice-v2"].add_response(
        "send_text_message",
        {"MessageId": "m-1"},
        expected_params={
            "DestinationPhoneNumber": TO,
            "MessageBody": BODY,
            "MessageType": "TRANSACTIONAL",
            "OriginationIdentity": "pool-0123456789abcdef",
        },
    )

    Deps(settings).sms.send(TO, BODY)

    stubs["pinpoint-sms-voice-v2"].assert_no_pending_responses()


def test_end_user_messaging_without_an_identity_is_a_clear_settings_error(stubs):
    # SendTextMessage is allowed only on the account's origination identities (template.yaml;
    # its Rules refuse the same parameters before a deploy): name one, or nothing is sent.
    with pytest.raises(SettingsError, match="SMS_ORIGINATION_IDENTITY"):
        Settings.from_env({**BASE, "SMS_PROVIDER": "end-user-messaging"})


def test_sns_is_the_default_provider(stubs):
    settings = Settings.from_env(dict(BASE))
    assert settings.sms_provider == "sns"
    stubs["sns"].add_response(
        "publish",
        {"MessageId": "m-1"},
        expected_params={
            "PhoneNumber": TO,
            "Message": BODY,
            "MessageAttributes": {
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
            },
        },
    )

    Deps(settings).sms.send(TO, BODY)

    stubs["sns"].assert_no_pending_responses()


def test_an_unknown_sms_provider_is_an_error_naming_the_variable():
    with pytest.raises(SettingsError, match="SMS_PROVIDER"):
        Settings.from_env({**BASE, "SMS_PROVIDER": "pinpoint"})


@pytest.mark.parametrize("missing", ["TABLE_NAME", "EVENT_BUS_NAME"])
def test_a_missing_variable_is_an_error_naming_it(missing):
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(env)


def test_a_variable_a_function_needs_is_an_error_naming_it_when_empty():
    with pytest.raises(SettingsError, match="IDEMPOTENCY_TABLE_NAME"):
        Settings.from_env({**BASE, "IDEMPOTENCY_TABLE_NAME": ""}, needs=("IDEMPOTENCY_TABLE_NAME",))


@pytest.mark.parametrize(("value", "allowed"), [("false", False), ("true", True), (None, False)])
def test_allow_replay_side_effects_reads_the_template_parameter(value, allowed):
    # The template passes the parameter's string ("true" / "false"); absent means off.
    env = dict(BASE) if value is None else {**BASE, "ALLOW_REPLAY_SIDE_EFFECTS": value}
    assert Settings.from_env(env).allow_replay_side_effects is allowed


# --- one way to keep a handler's dependencies ------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
HANDLER_MODULES = sorted((*ROOT.glob("producers/*.py"), *ROOT.glob("consumers/*.py")))


def test_handler_deps_builds_one_deps_on_first_use_and_keeps_it(monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "requests")
    monkeypatch.setenv("EVENT_BUS_NAME", "bus")
    monkeypatch.delenv("IDEMPOTENCY_TABLE_NAME", raising=False)
    deps = handler_deps(needs=("IDEMPOTENCY_TABLE_NAME",))  # reads nothing yet

    with pytest.raises(SettingsError, match="IDEMPOTENCY_TABLE_NAME"):
        deps()
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "claims")
    first = deps()

    assert deps() is first
    assert first.settings.idempotency_table_name == "claims"
    assert handler_deps(needs=("IDEMPOTENCY_TABLE_NAME",))() is not first  # each its own


def _module_level_statements(path: Path) -> list[ast.stmt]:
    return ast.parse(path.read_text("utf-8")).body


@pytest.mark.parametrize("path", HANDLER_MODULES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_handler_keeps_its_deps_with_handler_deps_and_nothing_else(path):
    tree = ast.parse(path.read_text("utf-8"))
    kept = [
        node
        for node in _module_level_statements(path)
        if isinstance(node, ast.Assign)
        and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["deps"]
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", None) == "handler_deps"
    ]
    assert len(kept) == 1, "one module-level `deps = handler_deps(...)`"
    calls = {
        getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    # No cache of its own: no `global _deps`, no functools.cache, no Deps or Settings built here.
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Global | ast.Nonlocal)]
    assert not {"cache", "lru_cache", "cached_property"} & (calls | names)
    assert "Deps" not in calls and "from_env" not in calls
    assert not [
        target.id
        for node in _module_level_statements(path)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and "deps" in target.id.lower() and target.id != "deps"
    ]
    # A consumer hands the wrapper that same accessor.
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "consumer":
            passed = {k.arg: k.value for k in node.keywords}
            assert getattr(passed.get("deps"), "id", None) == "deps", "@consumer(..., deps=deps)"


@pytest.mark.parametrize("path", HANDLER_MODULES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_handler_module_has_a_handler_deps_accessor(path):
    module = importlib.import_module(path.stem)
    assert module.deps.__qualname__ == handler_deps.__qualname__ + ".<locals>.deps"
