"""LINE first, SMS as the fallback (issue 18), against moto and the fake Messaging API
(`FakeLineApi`, which validates every request against LINE's OpenAPI description): the client's
retries and retry key, the channel chosen per person inside the once-only claim, and the
webhook (signature, linking, answers by button, forged buttons). Each test fails if the rule
it names breaks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from hotline_core import clock as hotline_clock
from hotline_core import messages
from hotline_core.adapters import line_api
from hotline_core.adapters.channels import LineFirst
from hotline_core.adapters.idempotency import OnceOnly, OnceOnlyMessages
from hotline_core.adapters.line_api import LineApi, LineApiError, LineUnreachable, retry_key
from hotline_core.adapters.line_links import LineLinks
from hotline_core.adapters.retry import Retrier, RetryPolicy
from hotline_core.adapters.store import DynamoRequestStore
from hotline_core.events import Accepted, Declined, Party
from hotline_core.line_messages import parse_postback, postback_data
from hotline_core.outcomes import outcome_event
from hotline_core.requests import CallRequest, Link, State, Step, new_link
from hotline_core.telling import invite_receiver, tell_caller
from hotline_tools.local.line_fake import FakeLineApi, sign, simulated_user_id, webhook_body
from tests.conftest import HandClock, RecordedTexts, call_requested

REGION = "ap-northeast-1"
TAKUMI = Party(name="タクミ", phone="+819011112222")
MIZUKI = Party(name="ミズキ", phone="+817033334444")
HARUTO = Party(name="ハルト", phone="+818055556666", lang="en")
T0 = datetime(2026, 12, 4, 3, 0, 7, tzinfo=UTC)  # noon in Tokyo
WINDOW = timedelta(seconds=120)
BASE = "https://hotline.example"
TOKEN = "local-channel-access-token"
CHANNEL_SECRET = "local-channel-secret"
SECRET_NAME = "hotline/line"
BOT = "U" + "b" * 32
MIZUKI_LINE = simulated_user_id(MIZUKI.phone)
TAKUMI_LINE = simulated_user_id(TAKUMI.phone)
STRANGER_LINE = simulated_user_id("someone else")
FAST = RetryPolicy(attempts=3, attempt_seconds=0.01, budget_seconds=5.0, base_delay=0.0)


@dataclass
class Bus:
    events: list[Any] = field(default_factory=list)

    def publish(self, data: Any, *, correlation_id: str) -> None:
        self.events.append(data)


class Recording:
    """A transport in front of the fake: keeps each request's headers, and can lose answers
    (LINE did the request, the answer never came back)."""

    def __init__(self, fake: FakeLineApi) -> None:
        self.fake = fake
        self.headers: list[dict[str, str]] = []
        self.unreachable = 0  # the next N requests never reach LINE
        self.lost_answers = 0  # the next N requests reach LINE, their answers are lost

    def __call__(self, method, url, *, headers, body, timeout):
        self.headers.append(dict(headers))
        if self.unreachable:
            self.unreachable -= 1
            raise LineUnreachable("connection refused", sent=False)
        answer = self.fake(method, url, headers=headers, body=body, timeout=timeout)
        if self.lost_answers:
            self.lost_answers -= 1
            raise LineUnreachable("read timed out", sent=True)
        return answer


@dataclass
class World:
    db: Any
    store: DynamoRequestStore
    links: LineLinks
    fake: FakeLineApi
    transport: Recording
    texts: RecordedTexts
    bus: Bus
    clock: HandClock
    metrics: list[str]
    sender: OnceOnlyMessages
    requests: int = 0

    def request(
        self, *, receiver: Party = MIZUKI, caller: Party = TAKUMI
    ) -> tuple[CallRequest, Link]:
        self.requests += 1
        request = CallRequest(
            request_id=f"r-{self.requests}",
            caller=caller,
            receiver=receiver,
            hotline_number="+815012340001",
            requested_at=self.clock.now,
            answer_by=self.clock.now + WINDOW,
        )
        link = new_link(self.clock.now)
        assert self.store.create(request, link).outcome.value == "created"
        return request, link

    def link(self, party: Party, user_id: str) -> None:
        assert self.links.link(self.links.new_code(party.phone), user_id) == party.phone

    def line_to(self, user_id: str) -> list[dict[str, Any]]:
        return self.fake.messages_to(user_id)


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        db = boto3.client("dynamodb", region_name=REGION)
        for name, key in (("requests", "pk"), ("claims", "id"), ("links", "pk")):
            db.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        clock, texts, metrics = HandClock(T0), RecordedTexts(), []
        fake = FakeLineApi(TOKEN, clock=clock)
        transport = Recording(fake)
        line_api.use_transport(transport)
        links = LineLinks(db, "links", clock=clock)
        api = LineApi(lambda: TOKEN, retry=Retrier(FAST, retry_if=line_api.retryable))
        line = LineFirst(lambda: links, lambda: api, count=metrics.append)
        sender = OnceOnlyMessages(
            texts, OnceOnly(db, "claims", clock), line=line, count=metrics.append
        )
        try:
            yield World(
                db,
                DynamoRequestStore(db, "requests"),
                links,
                fake,
                transport,
                texts,
                Bus(),
                clock,
                metrics,
                sender,
            )
        finally:
            line_api.use_transport(None)


# --- the client: retries, the retry key, 409 ---------------------------------------------------
def test_a_retried_push_carries_the_same_retry_key_on_every_attempt(world):
    world.fake.arm(2, status=500)
    world.transport.unreachable = 0
    api = LineApi(lambda: TOKEN, retry=Retrier(FAST, retry_if=line_api.retryable))
    api.push(MIZUKI_LINE, [{"type": "text", "text": "hi"}], retry_key=retry_key("invite#r-1"))

    keys = [h["X-Line-Retry-Key"] for h in world.transport.headers]
    assert keys == [retry_key("invite#r-1")] * 3  # 500, 500, then accepted
    assert [c["status"] for c in world.fake.calls] == [500, 500, 200]
    assert len(world.line_to(MIZUKI_LINE)) == 1
    # The key is the claim's, whoever computes it: a Lambda retry a minute later too.
    assert retry_key("invite#r-1") == retry_key("invite#r-1") != retry_key("outcome#r-1")


def test_429_and_no_connection_are_retried_other_4xx_are_not(world):
    api = LineApi(lambda: TOKEN, retry=Retrier(FAST, retry_if=line_api.retryable))
    world.fake.arm(1, status=429)
    world.transport.unreachable = 1
    api.push(MIZUKI_LINE, [{"type": "text", "text": "hi"}], retry_key=retry_key("a"))
    assert len(world.transport.headers) == 3 and len(world.line_to(MIZUKI_LINE)) == 1

    world.fake.arm(1, status=400)
    with pytest.raises(LineApiError) as refused:
        api.push(MIZUKI_LINE, [{"type": "text", "text": "hi"}], retry_key=retry_key("b"))
    assert refused.value.status == 400
    assert len(world.transport.headers) == 4  # one attempt only


def test_a_409_with_the_accepted_request_id_is_success(world):
    api = LineApi(lambda: TOKEN)
    message = [{"type": "text", "text": "hi"}]
    api.push(MIZUKI_LINE, message, retry_key=retry_key("invite#r-9"))
    api.push(MIZUKI_LINE, message, retry_key=retry_key("invite#r-9"))  # no exception

    assert [c["status"] for c in world.fake.calls] == [200, 409]
    assert len(world.line_to(MIZUKI_LINE)) == 1


def test_a_reply_carries_no_retry_key(world):
    token = world.fake.issue_reply_token(MIZUKI_LINE)
    LineApi(lambda: TOKEN).reply(token, [{"type": "text", "text": "ok"}])
    assert "X-Line-Retry-Key" not in world.transport.headers[-1]
    assert world.line_to(MIZUKI_LINE)[0]["kind"] == "reply"


# --- the channel, per person -----------------------------------------------------------------
def _all_strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _all_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _all_strings(v)]
    return [node] if isinstance(node, str) else []


def test_a_linked_receiver_gets_one_push_with_two_buttons_and_no_url(world):
    world.link(MIZUKI, MIZUKI_LINE)
    request, link = world.request()

    assert (
        invite_receiver(call_requested(request, link, BASE), world.sender, world.store, T0) is None
    )

    [pushed] = world.line_to(MIZUKI_LINE)
    assert pushed["kind"] == "push" and world.texts.sent == []
    assert pushed["retry_key"] == retry_key(f"invite#{request.request_id}")
    [message] = pushed["messages"]
    template = message["template"]
    assert template["type"] == "confirm" and "タクミ" in template["text"]
    actions = template["actions"]
    assert [a["label"] for a in actions] == ["はい", "今は無理"]
    assert [a["type"] for a in actions] == ["postback", "postback"]
    assert [parse_postback(a["data"]) for a in actions] == [
        parse_postback(postback_data("yes", link.token)),
        parse_postback(postback_data("no", link.token)),
    ]
    assert not [s for s in _all_strings(message) if "http" in s or BASE in s]
    assert world.metrics == ["LinePushSent"]


def test_an_english_receiver_gets_yes_and_not_now(world):
    world.link(HARUTO, simulated_user_id(HARUTO.phone))
    request, link = world.request(receiver=HARUTO)
    invite_receiver(call_requested(request, link, BASE), world.sender, world.store, T0)
    [pushed] = world.line_to(simulated_user_id(HARUTO.phone))
    labels = [a["label"] for a in pushed["messages"][0]["template"]["actions"]]
    assert labels == ["Yes", "Not now"]


def test_an_unlinked_receiver_gets_the_sms_as_before_and_no_secret_is_needed(world):
    def no_api():
        raise AssertionError("the channel's token was needed for someone not linked")

    sender = OnceOnlyMessages(
        world.texts,
        OnceOnly(world.db, "claims", world.clock),
        line=LineFirst(lambda: world.links, no_api, count=world.metrics.append),
    )
    request, link = world.request()
    event = call_requested(request, link, BASE)
    invite_receiver(event, sender, world.store, T0)

    body = messages.text("invite", "ja", caller="タクミ", link=event.link)
    assert world.texts.sent == [(MIZUKI.phone, body)]
    assert world.fake.sent == [] and world.metrics == []


def test_a_push_that_fails_after_its_retries_is_one_sms_and_a_duplicate_sends_nothing(world):
    world.link(MIZUKI, MIZUKI_LINE)
    request, link = world.request()
    event = call_requested(request, link, BASE)
    world.fake.arm(3, status=500)

    invite_receiver(event, world.sender, world.store, T0)
    invite_receiver(event, world.sender, world.store, T0)  # delivered again

    assert world.line_to(MIZUKI_LINE) == []
    assert world.texts.sent == [
        (MIZUKI.phone, messages.text("invite", "ja", caller="タクミ", link=event.link))
    ]
    assert world.metrics == ["LinePushFailed", "SmsFallback"]


def test_after_a_push_went_out_no_delivery_sends_an_sms(world):
    world.link(MIZUKI, MIZUKI_LINE)
    request, link = world.request()
    event = call_requested(request, link, BASE)
    for _ in range(3):
        invite_receiver(event, world.sender, world.store, T0)
    assert len(world.line_to(MIZUKI_LINE)) == 1 and world.texts.sent == []


def test_a_push_taken_by_line_whose_answers_were_lost_is_not_repeated_by_the_lambda_retry(world):
    # Every attempt reached LINE but no answer came back; the SMS fallback failed too, so
    # the claim was released and Lambda retries a minute later: the same retry key, a 409,
    # success. One LINE message, no SMS.
    world.link(MIZUKI, MIZUKI_LINE)
    request, link = world.request()
    event = call_requested(request, link, BASE)
    world.transport.lost_answers = 3
    world.texts.fail = 1
    with pytest.raises(ConnectionError):
        invite_receiver(event, world.sender, world.store, T0)

    world.clock.now = T0 + timedelta(seconds=60)
    invite_receiver(event, world.sender, world.store, T0 + timedelta(seconds=60))

    assert len(world.line_to(MIZUKI_LINE)) == 1 and world.texts.sent == []
    assert [c["status"] for c in world.fake.calls] == [200, 409, 409, 409]
    assert world.metrics == ["LinePushFailed", "SmsFallback", "LinePushSent"]


def test_a_linked_caller_gets_the_outcome_by_line_with_the_number_to_call(world):
    world.link(TAKUMI, TAKUMI_LINE)
    request, link = world.request()
    world.store.step(Step.ACCEPT, T0, link_hash=link.token_hash, via_link=True)
    accepted = outcome_event(world.store.get(request.request_id))
    assert isinstance(accepted, Accepted)

    tell_caller(accepted, world.sender, world.store)
    tell_caller(accepted, world.sender, world.store)  # delivered again

    [told] = world.line_to(TAKUMI_LINE)
    assert told["messages"] == [
        {
            "type": "text",
            "text": messages.text("accepted", "ja", receiver="ミズキ", phone=MIZUKI.phone),
        }
    ]
    assert "070-3333-4444" in told["messages"][0]["text"]
    assert world.texts.sent == []


# --- the webhook ---------------------------------------------------------------------------
@pytest.fixture
def webhook(world, monkeypatch):
    """producers/line_webhook.py's handler on this world's tables and fake LINE."""
    import producers.line_webhook as module
    from hotline_core.runtime.clients import forget_clients

    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(
        Name=SECRET_NAME,
        SecretString=json.dumps({"channelSecret": CHANNEL_SECRET, "channelAccessToken": TOKEN}),
    )
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "TABLE_NAME": "requests",
        "EVENT_BUS_NAME": "bus",
        "LINE_SECRET_NAME": SECRET_NAME,
        "LINE_TABLE_NAME": "links",
    }.items():
        monkeypatch.setenv(name, value)
    forget_clients()
    module.deps.cache_clear()
    hotline_clock.use(world.clock)
    deps = module.deps()
    deps.bus = world.bus  # the events it publishes, as the link page's are read below
    try:
        yield Webhook(module, world)
    finally:
        module.deps.cache_clear()
        hotline_clock.use(None)
        forget_clients()


class Context:
    function_name = "LineWebhookFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:LineWebhook"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass
class Webhook:
    module: Any
    world: World

    def post(self, body: bytes, signature: str | None) -> int:
        headers = {"content-type": "application/json"}
        if signature is not None:
            headers["x-line-signature"] = signature
        event = {
            "version": "2.0",
            "routeKey": "POST /line/webhook",
            "rawPath": "/line/webhook",
            "headers": headers,
            "body": body.decode("utf-8"),
            "isBase64Encoded": False,
            "requestContext": {"http": {"method": "POST", "path": "/line/webhook"}},
        }
        return self.module.handler(event, Context())["statusCode"]

    def send(
        self, kind: str, user: str, *, text: str | None = None, data: str | None = None
    ) -> tuple[int, list[str]]:
        """Post one signed event from `user`; the status and the texts replied to them."""
        before = len(self.world.fake.sent)
        body = webhook_body(BOT, [self.world.fake.event(kind, user, text=text, data=data)])
        status = self.post(body, sign(body, CHANNEL_SECRET))
        replies = [
            m["text"]
            for item in self.world.fake.sent[before:]
            if item["kind"] == "reply" and item["to"] == user
            for m in item["messages"]
        ]
        return status, replies


def test_a_missing_or_wrong_signature_is_401_and_changes_nothing(webhook, world):
    code = world.links.new_code(MIZUKI.phone)
    request, link = world.request()
    for kind, values in (
        ("message", {"text": code}),
        ("postback", {"data": postback_data("yes", link.token)}),
    ):
        body = webhook_body(BOT, [world.fake.event(kind, MIZUKI_LINE, **values)])
        assert webhook.post(body, None) == 401
        assert webhook.post(body, sign(body, "another-channel's-secret")) == 401
        assert webhook.post(body + b" ", sign(body, CHANNEL_SECRET)) == 401  # body altered
    assert world.links.user_for(MIZUKI.phone) is None
    assert world.store.get(request.request_id).state is State.INQUIRY
    assert world.fake.sent == [] and world.bus.events == []
    # The code was not consumed: sent properly, it links.
    assert webhook.send("message", MIZUKI_LINE, text=code)[0] == 200
    assert world.links.user_for(MIZUKI.phone) == MIZUKI_LINE


def test_with_line_off_the_webhook_is_404_and_reads_no_secret(webhook, world, monkeypatch):
    monkeypatch.setenv("LINE_SECRET_NAME", "")
    webhook.module.deps.cache_clear()
    body = webhook_body(BOT, [world.fake.event("follow", MIZUKI_LINE)])
    assert webhook.post(body, sign(body, CHANNEL_SECRET)) == 404
    assert "line_credentials" not in vars(webhook.module.deps())
    assert world.fake.sent == []


def test_follow_a_code_links_a_wrong_or_expired_code_links_nothing_unfollow_unlinks(webhook, world):
    status, [hello] = webhook.send("follow", MIZUKI_LINE)
    assert status == 200 and "6桁のコード" in hello

    wrong = webhook.send("message", MIZUKI_LINE, text="000000")[1]
    assert len(wrong) == 1 and "コードが違うか" in wrong[0]
    assert world.links.user_for(MIZUKI.phone) is None

    expired = world.links.new_code(MIZUKI.phone)
    world.clock.now += timedelta(minutes=10, seconds=1)
    assert "コードが違うか" in webhook.send("message", MIZUKI_LINE, text=expired)[1][0]
    assert world.links.user_for(MIZUKI.phone) is None

    code = world.links.new_code(MIZUKI.phone)
    status, [linked] = webhook.send("message", MIZUKI_LINE, text=f" {code} ")
    assert status == 200 and "連携できました" in linked
    assert world.links.user_for(MIZUKI.phone) == MIZUKI_LINE
    assert world.links.phone_for(MIZUKI_LINE) == MIZUKI.phone
    # The same code from someone else links nothing: it was used.
    assert "コードが違うか" in webhook.send("message", STRANGER_LINE, text=code)[1][0]
    assert world.links.phone_for(STRANGER_LINE) is None

    status, replies = webhook.send("unfollow", MIZUKI_LINE)
    assert (status, replies) == (200, [])
    assert world.links.user_for(MIZUKI.phone) is None and world.links.phone_for(MIZUKI_LINE) is None


def test_five_wrong_codes_a_day_and_even_the_right_code_is_refused(webhook, world):
    for guess in range(4):
        assert (
            "コードが違うか" in webhook.send("message", STRANGER_LINE, text=f"00000{guess}")[1][0]
        )
    assert "今日はこれ以上" in webhook.send("message", STRANGER_LINE, text="000009")[1][0]
    code = world.links.new_code(MIZUKI.phone)
    assert "今日はこれ以上" in webhook.send("message", STRANGER_LINE, text=code)[1][0]
    assert world.links.user_for(MIZUKI.phone) is None
    world.clock.now += timedelta(days=1, seconds=1)
    code = world.links.new_code(MIZUKI.phone)
    assert "連携できました" in webhook.send("message", STRANGER_LINE, text=code)[1][0]


def _tap(webhook, user: str, answer: str, link: Link) -> tuple[int, list[str]]:
    return webhook.send("postback", user, data=postback_data(answer, link.token))  # type: ignore[arg-type]


def test_a_tap_answers_like_the_link_page_and_says_what_happened(webhook, world):
    world.link(MIZUKI, MIZUKI_LINE)
    yes_request, yes_link = world.request()
    status, [reply] = _tap(webhook, MIZUKI_LINE, "yes", yes_link)
    assert status == 200 and reply == "タクミさんに伝えました。電話がかかってきます。"
    accepted = world.store.get(yes_request.request_id)
    assert accepted.state is State.ACCEPTED
    # The event the link page publishes for this state: the same one.
    assert world.bus.events == [outcome_event(accepted)]
    assert isinstance(world.bus.events[0], Accepted) and not world.bus.events[0].late

    # Pressed again: nothing changes; said so (and announced again, as the page does).
    assert _tap(webhook, MIZUKI_LINE, "yes", yes_link)[1] == ["この呼び出しにはもう答えています。"]
    assert _tap(webhook, MIZUKI_LINE, "no", yes_link)[1] == ["この呼び出しにはもう答えています。"]
    assert world.store.get(yes_request.request_id).state is State.ACCEPTED

    no_request, no_link = world.request(caller=HARUTO)
    assert _tap(webhook, MIZUKI_LINE, "no", no_link)[1] == [
        "ハルトさんに今は話せないと伝えました。"
    ]
    declined = world.store.get(no_request.request_id)
    assert declined.state is State.DECLINED
    assert isinstance(world.bus.events[-1], Declined)
    assert world.bus.events[-1] == outcome_event(declined)


def test_a_late_yes_is_free_now_a_late_no_changes_nothing_and_an_expired_one_is_too_late(
    webhook, world
):
    world.link(MIZUKI, MIZUKI_LINE)
    request, link = world.request()
    world.clock.now = request.answer_by + timedelta(seconds=30)
    assert world.store.step(Step.TIME_OUT, world.clock.now, request_id=request.request_id).applied

    [told] = _tap(webhook, MIZUKI_LINE, "no", link)[1]
    assert "もう伝わっています" in told
    assert world.store.get(request.request_id).state is State.TIMED_OUT and world.bus.events == []

    [free] = _tap(webhook, MIZUKI_LINE, "yes", link)[1]
    assert "今なら話せると伝えました" in free and "050-1234-0001" in free
    late = world.store.get(request.request_id)
    assert late.state is State.ACCEPTED_LATE
    assert world.bus.events == [outcome_event(late)] and world.bus.events[0].late

    old_request, old_link = world.request(caller=HARUTO)
    world.clock.now += timedelta(hours=25)
    [too_late] = _tap(webhook, MIZUKI_LINE, "yes", old_link)[1]
    assert "期限が切れました" in too_late and "050-1234-0001" in too_late
    assert world.store.get(old_request.request_id).state is State.INQUIRY


def test_a_forged_or_copied_button_answers_nothing(webhook, world):
    world.link(MIZUKI, MIZUKI_LINE)
    world.link(TAKUMI, TAKUMI_LINE)
    request, link = world.request()
    # Takumi (linked, but not the receiver) sends Mizuki's button's data; a stranger too.
    for user in (TAKUMI_LINE, STRANGER_LINE):
        status, [refused] = _tap(webhook, user, "yes", link)
        assert status == 200 and "このボタンは使えません" in refused
    # An altered token, a made-up one, data of another shape.
    altered = link.token[:-1] + ("A" if link.token[-1] != "A" else "B")
    for data in (
        postback_data("yes", altered),
        postback_data("yes", "x" * 22),
        f"v=1&a=yes&t={link.token}&t={link.token}",
        f"v=2&a=yes&t={link.token}",
        f"v=1&a=maybe&t={link.token}",
        "garbage",
    ):
        assert "このボタンは使えません" in webhook.send("postback", MIZUKI_LINE, data=data)[1][0]
    assert world.store.get(request.request_id).state is State.INQUIRY
    assert world.bus.events == []
    # Mizuki's own tap still works.
    _tap(webhook, MIZUKI_LINE, "yes", link)
    assert world.store.get(request.request_id).state is State.ACCEPTED


def test_event_types_not_handled_are_ignored_with_200(webhook, world):
    body = json.dumps(
        {
            "destination": BOT,
            "events": [
                {"type": "beacon", "source": {"type": "user", "userId": MIZUKI_LINE}},
                {"type": "join", "source": {"type": "group", "groupId": "C" + "0" * 32}},
            ],
        }
    ).encode()
    assert webhook.post(body, sign(body, CHANNEL_SECRET)) == 200
    empty = webhook_body(BOT, [])  # LINE's "verify" button
    assert webhook.post(empty, sign(empty, CHANNEL_SECRET)) == 200
    assert world.fake.sent == []
