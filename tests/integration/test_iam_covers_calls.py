"""Every AWS call a function makes while the local runtime plays every path is allowed by that
function's role in the SAM-transformed template. moto enforces no IAM: without this, a
permission missing from template.yaml passes every test and fails only after `sam deploy`.

Identity policies only: also what Lambda (OnFailure) and Scheduler (the role a schedule
passes) do with a role. Resource policies (who may invoke a function, EventBridge's own
dead-letter queues) are not checked here. The evaluator itself (tests/iam_policy.py) is
tested on its own in test_iam_evaluator.py."""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import botocore.handlers
import pytest
from botocore.exceptions import ClientError

from hotline_core.pins import hash_pin
from tests.conftest import AOI, FORM, HARUTO, LINE_A, LINE_B, MIZUKI, ROOT, TAKUMI, link_path
from tests.iam_policy import (
    ON_FAILURE,
    ApiCall,
    IamCallRecorder,
    Need,
    RolePolicies,
    UnmappedCall,
    action_matches,
    as_list,
    needs,
    resource_matches,
)
from tests.unit.template_doc import (  # noqa: F401 - `transformed` is a fixture
    STAR_ALLOWED,
    service_authorization_reference,
    transformed,
)

REN = "+819022223333"  # Ren sleeps: quiet hours cover the whole run
YUI, SOTA = "+819044445555", "+819066667777"  # the pair whose effects are made to fail
MEMBER, STRANGER = "+819012340000", "+819099998888"
LINE_C = "+815012340010"
PIN, BENEFIT_PIN = "2468", "246810"
ASYNC_FUNCTIONS = {  # invoked asynchronously (EventBridge, Scheduler): each has an OnFailure
    "InviteReceiverFunction",
    "StartTimerFunction",
    "TellCallerFunction",
    "CancelTimerFunction",
    "TextMemberFunction",
    "AnswerTimerFunction",
}


def directory(now) -> bytes:
    tokyo = now.astimezone(ZoneInfo("Asia/Tokyo"))
    quiet = f"{tokyo - timedelta(hours=1):%H:%M}-{tokyo + timedelta(hours=2):%H:%M}"
    circles = [
        (
            LINE_A,
            [
                ("タクミ", TAKUMI, {"pin_hash": hash_pin(PIN)}),
                ("ミズキ", MIZUKI, {}),
                ("ハルト", HARUTO, {}),
            ],
        ),
        (LINE_B, [("アオイ", AOI, {}), ("レン", REN, {"quiet_hours": quiet})]),
        (LINE_C, [("ユイ", YUI, {}), ("ソウタ", SOTA, {})]),
    ]
    return json.dumps(
        {
            "circles": [
                {"number": number, "members": [{"name": n, "phone": p, **x} for n, p, x in people]}
                for number, people in circles
            ]
        }
    ).encode()


class Botocore:
    """A hook in botocore's built-in handlers, like the recorder's, so it reaches every
    client a handler creates. It runs at `before-call`, after the recorder saw the call, and
    makes chosen functions' calls fail as an outage would, or answers for a service moto does
    not emulate (End User Messaging)."""

    def __init__(self) -> None:
        self.failing: set[tuple[str, str]] = set()  # (function, operation)
        self.answers: dict[str, dict[str, Any]] = {}  # operation → its response
        self.names: dict[str, str] = {}
        self.failed: list[tuple[str, str]] = []

    def __call__(self, model: Any, **_: Any) -> Any:
        function = self.names.get(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""), "")
        if (function, model.name) in self.failing:
            self.failed.append((function, model.name))
            error = {"Error": {"Code": "ValidationException", "Message": "injected"}}
            raise ClientError(error, model.name)  # not retryable: Lambda's retry, then OnFailure
        if function and model.name in self.answers:
            return _Http200(), self.answers[model.name]
        return None

    @contextmanager
    def failing_for(self, *failing: tuple[str, str]) -> Iterator[None]:
        self.failing = set(failing)
        try:
            yield
        finally:
            self.failing = set()


class _Http200:
    status_code = 200
    headers: ClassVar[dict[str, str]] = {}


@dataclass
class Played:
    calls: list[ApiCall]
    prompts: dict[str, list[str]]  # phase → every prompt the callers heard in it
    replayed: int  # events the replay sent through the bus again (its consumers skip them)
    dead_letters: list[str]  # logical ids of the functions whose records reached OnFailure
    failed: list[tuple[str, str]]
    functions: set[str]
    roles: dict[str, str]  # role ARN → logical id
    # End User Messaging's runtime: the phases it played, and its resolution (its conditions
    # choose the other SMS provider's permissions).
    end_user_messaging: tuple[set[str], Any]
    resolve: Any


MEMBERS = json.dumps([{"phone": MEMBER, "member_id": "M001"}]).encode()
BENEFITS = f"pin,campaign_url\n{BENEFIT_PIN},https://example.jp/campaign\n".encode()
ORIGINATION = "arn:aws:sms-voice:ap-northeast-1:123456789012:phone-number/phone-0123456789abcdef"


@pytest.fixture(scope="module")
def played():
    """Local runtimes playing every path that makes distinct AWS calls, each call recorded:
    one with SNS for texts (the default), one with End User Messaging."""
    from hotline_tools.local.engine import LocalClock, LocalHotline

    recorder, hook = IamCallRecorder(), Botocore()
    sns = LocalHotline(
        root=ROOT,
        directory=directory(LocalClock().now()),
        members=MEMBERS,
        benefits=BENEFITS,
        # Ten minutes: a failing consumer's last retry (180 s after the call) still finds the
        # request waiting, so it still makes the call that fails and reaches OnFailure.
        answer_window=600,
    )
    end_user_messaging = LocalHotline(
        root=ROOT,
        members=MEMBERS,
        benefits=BENEFITS,
        parameters={
            "SmsProvider": "end-user-messaging",
            "SmsOriginationIdentity": ORIGINATION,
        },
    )
    hook.answers = {"SendTextMessage": {"MessageId": "local"}}
    # Before start: every client the handlers create afterwards carries both hooks.
    recorder.install()
    botocore.handlers.BUILTIN_HANDLERS.append(("before-call", hook))
    try:
        with running(end_user_messaging, recorder, hook):
            _play_end_user_messaging(end_user_messaging, recorder)
            eum_phases = {c.phase for c in recorder.api_calls}
            eum_refs = end_user_messaging.stack.refs
        with running(sns, recorder, hook) as names:
            prompts, replayed = _play(sns, recorder, hook)
            refs = sns.stack.refs
            played = Played(
                calls=list(recorder.api_calls),
                prompts=prompts,
                replayed=replayed,
                dead_letters=[
                    names[d["requestContext"]["functionArn"].rsplit(":", 1)[1]]
                    for d in sns.dead_letters
                ],
                failed=list(hook.failed),
                functions=set(sns.stack.functions),
                roles={r["Arn"]: lid for lid, r in refs.items() if ":role/" in r.get("Arn", "")},
                end_user_messaging=(
                    eum_phases,
                    lambda expr: end_user_messaging.template.resolve(expr, eum_refs),
                ),
                # The local runtime's own !Ref / !GetAtt / !Sub resolution, on what it made
                # (both runtimes make the same names: one stack name, one template).
                resolve=lambda expr: sns.template.resolve(expr, refs),
            )
    finally:
        botocore.handlers.BUILTIN_HANDLERS.remove(("before-call", hook))
        recorder.uninstall()
    yield played


@contextmanager
def running(engine, recorder, hook) -> Iterator[dict[str, str]]:
    engine.start()
    try:
        names = {fn.arn.rsplit(":", 1)[1]: lid for lid, fn in engine.stack.functions.items()}
        recorder.names = hook.names = names
        recorder.on_failure_queues = {
            fn.dead_letter_queue for fn in engine.stack.functions.values() if fn.dead_letter_queue
        }
        yield names
    finally:
        engine.stop()


def _play_end_user_messaging(engine, recorder) -> None:
    phase = "End User Messaging: accepted, and a member's benefit"
    with recorder.during(phase):
        engine.call(TAKUMI)
        [event] = [e for e in engine.events() if e["detail-type"] == "CallRequested"]
        engine.http(
            "POST", link_path(event["detail"]["data"]["link"]), body=b"answer=yes", headers=FORM
        )
        engine.call(MEMBER, line="benefits", digits=f"{BENEFIT_PIN}#")


def _play(engine, recorder, hook) -> tuple[dict[str, list[str]], int]:
    prompts: dict[str, list[str]] = defaultdict(list)
    # Until a timer has surely fired: the window, its end rounded up to a whole minute, and
    # Scheduler firing anywhere in that minute.
    window = int(engine.template.parameters["AnswerWindowSeconds"]) + 120
    retries = 181  # Lambda's two retries: 60 s, then 120 s after that (and real time passing)

    def call(phase, caller, to, digits="", line="hotline"):
        with recorder.during(phase):
            answer = engine.call(caller, to=to, digits=digits, line=line)
        prompts[phase] += answer["prompts"]
        return answer

    def post(phase, path, word):
        with recorder.during(phase):
            engine.http("POST", path, body=f"answer={word}".encode(), headers=FORM)

    def advance(phase, seconds):
        with recorder.during(phase):
            engine.advance(seconds)

    def last_link(to):
        return link_path(engine.sms(to)[-1]["body"])

    # Quiet hours first: the clock has not moved, so Ren's span covers now.
    call("quiet hours", AOI, LINE_B)
    call("quiet hours, but the sleeper asked first: mutual", REN, LINE_B)
    call("quiet hours, but the sleeper asked first: mutual", AOI, LINE_B)
    call("unknown caller", STRANGER, LINE_A)
    # Takumi's entry has a PIN; his circle of three has a menu.
    call("PIN right, menu choice, accepted", TAKUMI, LINE_A, f"{PIN}#1")
    with recorder.during("PIN right, menu choice, accepted"):
        engine.http("GET", last_link(MIZUKI))
    post("PIN right, menu choice, accepted", last_link(MIZUKI), "yes")
    call("declined", TAKUMI, LINE_A, f"{PIN}#1")
    post("declined", last_link(MIZUKI), "no")
    call("timed out, then a late yes", TAKUMI, LINE_A, f"{PIN}#2")
    advance("timed out, then a late yes", window)
    post("timed out, then a late yes", last_link(HARUTO), "yes")
    call("mutual call", MIZUKI, LINE_A, "1")
    call("mutual call", TAKUMI, LINE_A, f"{PIN}#1")
    waiting = call("repeat call", MIZUKI, LINE_A, "2")
    call("repeat call", MIZUKI, LINE_A, "2")
    with recorder.during("a timer made before schedules carried the link"):
        engine.host.invoke("AnswerTimerFunction", {"request_id": waiting["contact_id"]})
    call("PIN wrong, then right", TAKUMI, LINE_A, f"1111#{PIN}#1")
    call("PIN lockout", TAKUMI, LINE_A, "2222#3333#4444#")
    call("PIN lockout", TAKUMI, LINE_A, "5555#")
    call("PIN lockout", TAKUMI, LINE_A, f"{PIN}#")
    # The benefits line.
    call("benefits: member, right PIN", MEMBER, None, f"{BENEFIT_PIN}#", line="benefits")
    call("benefits: not a member", STRANGER, None, f"{BENEFIT_PIN}#", line="benefits")
    call("benefits: wrong PIN", MEMBER, None, f"1111#{BENEFIT_PIN}#", line="benefits")
    call("benefits: lockout", MEMBER, None, "2222#3333#4444#", line="benefits")
    call("benefits: lockout", MEMBER, None, f"5555#{BENEFIT_PIN}#", line="benefits")
    # LINE: Haruto and Takumi link their LINE (a wrong code first, a follow), Haruto calls
    # Takumi, whose invitation is a push with buttons; his tap answers, Haruto is told by
    # LINE; then both unfollow (unlinked: the texts below go by SMS again).
    _play_line(engine, recorder, call)
    # Failures, on a pair of their own: each async function's retries end in OnFailure.
    with hook.failing_for(("CallRequestFunction", "PutEvents")):
        call("CallRequested not published: the request is undone", SOTA, LINE_C)
    with hook.failing_for(("InviteReceiverFunction", "Publish")):
        call("consumers fail: OnFailure", YUI, LINE_C)
        advance("consumers fail: OnFailure", retries)
    [event] = [
        e
        for e in engine.events()
        if e["detail"]["data"].get("caller", {}).get("phone") == YUI
        and e["detail-type"] == "CallRequested"
    ]
    link = link_path(event["detail"]["data"]["link"])
    with hook.failing_for(
        ("TellCallerFunction", "Publish"), ("CancelTimerFunction", "DeleteSchedule")
    ):
        post("consumers fail: OnFailure", link, "yes")
        advance("consumers fail: OnFailure", retries)
    with hook.failing_for(("AnswerTimerFunction", "PutEvents")):
        # The timer nobody could cancel fires, and fails with its retries.
        advance("consumers fail: OnFailure", window + retries)
    with hook.failing_for(("StartTimerFunction", "CreateSchedule")):
        call("consumers fail: OnFailure", SOTA, LINE_C)
        advance("consumers fail: OnFailure", retries)
    advance("the member's lockout ends", 3601)
    with hook.failing_for(("TextMemberFunction", "Publish")):
        call("consumers fail: OnFailure", MEMBER, None, f"{BENEFIT_PIN}#", line="benefits")
        advance("consumers fail: OnFailure", retries)
    # At least once: every event delivered again; then the whole archive replayed.
    delivered = [e for e in engine.events() if "replay-name" not in e]
    for event in delivered:
        for fn in engine.stack.functions.values():
            for rule, url in zip(fn.spec.rules, fn.target_queues, strict=True):
                if event["detail-type"] in rule.pattern["detail-type"]:
                    engine.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(event))
    with recorder.during("duplicate deliveries"):
        engine.pump()
    now = engine.clock.now()
    with recorder.during("replay"):
        replayed = engine.replay(now - timedelta(days=1), now)["replayed"]
    return dict(prompts), replayed


def _play_line(engine, recorder, call) -> None:
    from hotline_tools.local.line_fake import simulated_user_id

    phase = "LINE: linked, invited by button, told by LINE"
    users = {phone: simulated_user_id(phone) for phone in (HARUTO, TAKUMI)}

    def send(user, kind, **fields):
        with recorder.during(phase):
            answer = engine.line_send({"from": user, "type": kind, **fields})
        assert answer["status"] == 200, answer
        return answer

    for phone, user in users.items():
        send(user, "follow")
        send(user, "message", text="000000")  # a wrong code: counted
        send(user, "message", text=engine.line_code(phone))
    call(phase, HARUTO, LINE_A, "1")  # Haruto's menu: 1 is Takumi
    [invitation] = [m for m in engine.line_messages() if m["to"] == users[TAKUMI]][-1:]
    [yes, _no] = invitation["messages"][0]["template"]["actions"]
    send(users[TAKUMI], "postback", data=yes["data"])
    told = [m for m in engine.line_messages() if m["to"] == users[HARUTO] and m["kind"] == "push"]
    assert told, "Haruto was not told by LINE"
    for user in users.values():
        send(user, "unfollow")


# --- the conversations really took every path ------------------------------------------------
def calls_of(played, function, operation):
    return [c for c in played.calls if c.principal == function and c.operation == operation]


def test_every_path_was_taken_and_recorded(played):
    said = {phase: " ".join(p) for phase, p in played.prompts.items()}
    assert said["PIN right, menu choice, accepted"].startswith(
        "お電話ありがとうございます。 暗証番号を入力し"  # the greeting, before the Lambda
    )
    assert "話したい相手の番号を押してください" in said["PIN right, menu choice, accepted"]
    assert "暗証番号が違います" in said["PIN wrong, then right"]
    assert "おやすみ時間" in said["quiet hours"]
    assert (
        "もあなたと話したがっています" in said["quiet hours, but the sleeper asked first: mutual"]
    )
    assert "もあなたと話したがっています" in said["mutual call"]
    assert "返事をまだ待っています" in said["repeat call"]
    assert said["PIN lockout"].count("しばらくご利用いただけません") == 2
    assert said["unknown caller"].startswith(
        "お電話ありがとうございます。 この電話番号は登録されていません"
    )
    assert "SMSをご確認ください" in said["benefits: member, right PIN"]
    assert "この電話番号は登録されていません" in said["benefits: not a member"]
    assert "暗証番号が違います" in said["benefits: wrong PIN"]
    assert "SMSをご確認ください" not in said["benefits: lockout"]  # the right PIN, refused
    assert played.replayed >= 20
    # Every function made calls, and every async one ended in its OnFailure destination.
    assert {c.principal for c in played.calls} == played.functions
    assert set(played.dead_letters) == ASYNC_FUNCTIONS
    assert {c.principal for c in played.calls if c.via == ON_FAILURE} == ASYNC_FUNCTIONS
    assert {f for f, _ in played.failed} == ASYNC_FUNCTIONS | {"CallRequestFunction"}
    # The calls that only some paths make.
    transact = [
        kind
        for c in calls_of(played, "CallRequestFunction", "TransactWriteItems")
        for item in c.params["TransactItems"]
        for kind in item
    ]
    assert {"Put", "ConditionCheck", "Delete"} <= set(transact)  # Delete: the undo
    for function in ("InviteReceiverFunction", "TellCallerFunction", "TextMemberFunction"):
        assert calls_of(played, function, "SendTextMessage"), function
    legacy = [c for c in played.calls if c.phase.startswith("a timer made before")]
    assert [c.operation for c in legacy][:1] == ["GetItem"]  # the pointer, then the link
    for function, operation in [
        ("CallRequestFunction", "GetObject"),
        ("CallRequestFunction", "BatchGetItem"),  # repeat and mutual
        ("CallRequestFunction", "UpdateItem"),  # mutual accept, PIN failures
        ("CallRequestFunction", "GetItem"),  # quiet hours, PIN lockout
        ("AnswerLinkFunction", "GetItem"),
        ("AnswerLinkFunction", "UpdateItem"),
        ("AnswerTimerFunction", "UpdateItem"),
        ("BenefitRequestFunction", "UpdateItem"),
        ("StartTimerFunction", "CreateSchedule"),
        ("CancelTimerFunction", "DeleteSchedule"),
        ("InviteReceiverFunction", "DeleteItem"),  # a failed send releases its claim
    ]:
        assert calls_of(played, function, operation), f"{function} never called {operation}"
    for function in (
        "CallRequestFunction",
        "AnswerLinkFunction",
        "AnswerTimerFunction",
        "BenefitRequestFunction",
    ):
        assert calls_of(played, function, "PutEvents"), function
    assert (
        len({c.params["TableName"] for c in calls_of(played, "BenefitRequestFunction", "GetItem")})
        == 3
    )


# --- every call is allowed ---------------------------------------------------------------------
def all_needs(played) -> tuple[list[Need], list[str]]:
    found, unmapped = [], []
    for call in played.calls:
        try:
            found += needs(call, played.roles)
        except UnmappedCall as exc:
            unmapped.append(str(exc))
    return found, unmapped


SCHEDULE = re.compile(r"answer-[0-9a-f-]{36}")


def report(missing: list[Need]) -> str:
    grouped: dict[tuple[str, str], list[Need]] = defaultdict(list)
    for need in missing:
        grouped[(need.principal, need.action)].append(need)
    lines = []
    for (principal, action), found in sorted(grouped.items()):
        resources = sorted({n.resource for n in found})
        shown = resources[0] + (f" (and {len(resources) - 1} more)" if len(resources) > 1 else "")
        # One line per kind of call, not one per request: the request ids are left out.
        calls = sorted(
            {
                SCHEDULE.sub("answer-<request>", n.call) + (f" ({n.why})" if n.why else "")
                for n in found
            }
        )
        phases = sorted({n.phase for n in found if n.phase})
        lines.append(
            f"- {principal} needs {action} on {shown}\n"
            f"    for: {'; '.join(calls)}\n    while: {'; '.join(phases)}"
        )
    return "\n".join(lines)


def providers(played, request) -> tuple[RolePolicies, RolePolicies, set[str]]:
    """The roles as CloudFormation gets them (SAM policy templates expanded, one per
    function) with SNS as the SMS provider and with End User Messaging, and the phases the
    End User Messaging runtime played."""
    resources = request.getfixturevalue("transformed")
    phases, resolve = played.end_user_messaging
    return RolePolicies(resources, played.resolve), RolePolicies(resources, resolve), phases


def test_every_recorded_call_is_allowed_by_the_calling_functions_role(played, request):
    sns, end_user_messaging, phases = providers(played, request)
    found, unmapped = all_needs(played)
    if unmapped:
        pytest.fail(
            "calls with no IAM mapping:\n" + "\n".join(sorted(set(unmapped))), pytrace=False
        )
    assert len(found) >= len(played.calls)
    # Each call against the roles of the stack it ran in: only that provider's SMS grant.
    missing = [n for n in found if not (end_user_messaging if n.phase in phases else sns).allows(n)]
    if missing:
        pytest.fail(
            f"{len(missing)} recorded AWS calls would be denied on AWS; missing permissions:\n"
            + report(missing),
            pytrace=False,
        )


def test_every_permission_granted_is_used_by_a_path_played_here(played, request):
    """The other direction: a grant no recorded call needs is either more than the code
    uses, or a path this module does not play yet (then play it above). What End User
    Messaging's stack grants beyond SNS's must be used by the calls made there."""
    sns, end_user_messaging, phases = providers(played, request)
    found, _ = all_needs(played)
    principals = {n.principal for n in found}

    def unused_in(policies, needs, beside=None):
        return [
            f"- {principal}: {action} on {resource}"
            for principal in sorted(principals)
            for statement in policies.statements(principal)
            if statement["Effect"] == "Allow"
            and (beside is None or statement not in beside.statements(principal))
            for action in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
            if not any(
                n.principal == principal
                and action_matches(action, n.action)
                and resource_matches(resource, n.resource)
                for n in needs
            )
        ]

    eum_needs = [n for n in found if n.phase in phases]
    unused = unused_in(sns, found) + unused_in(end_user_messaging, eum_needs, beside=sns)
    assert any(
        "sms-voice:SendTextMessage" in as_list(s["Action"])
        for s in end_user_messaging.statements("InviteReceiverFunction")
    )
    assert principals >= played.functions | {"SchedulerRole"}
    if unused:
        pytest.fail(
            "granted, but no call played here needs it:\n" + "\n".join(unused), pytrace=False
        )


def test_each_needed_action_is_a_real_iam_action_on_a_resource_it_is_scoped_to(played):
    """The mapping itself is checked against the Service Authorization Reference (as cfn-lint
    ships it): no invented action such as dynamodb:TransactWriteItems, and each resource has
    the ARN format of a resource type the action takes ("*" only where it takes none, or for
    sns:Publish straight to a phone number)."""
    reference = service_authorization_reference()
    found, _ = all_needs(played)
    assert found
    for need in {(n.action, n.resource) for n in found}:
        action, resource = need
        service, name = action.split(":", 1)
        spec = reference[service]["Actions"].get(name.lower())
        assert spec is not None, f"{action} is not an IAM action"
        types = spec.get("Resources") or []
        kinds = {k.lower(): v for k, v in reference[service]["Resources"].items()}
        if resource == "*":
            assert not types or action in STAR_ALLOWED, f"{action} on * but it takes {types}"
            continue
        formats = [
            f.replace("${Partition}", "aws")
            .replace("${Region}", "[a-z0-9-]+")
            .replace("${Account}", "[0-9]{12}")
            for t in types
            for f in kinds[t.lower()]["ARNFormats"]
        ]
        assert any(re.fullmatch(f, resource) for f in formats), (action, resource, formats)
