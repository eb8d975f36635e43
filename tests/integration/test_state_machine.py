"""A stateful property test: random interleavings of calls (new, repeated, mutual), page views,
taps (yes, no, garbage, repeated), time passing, throttled SMS, Scheduler firing anywhere in
its minute and again later, events delivered again and replayed, against the whole hotline
in-process, on a clock that moves only when the test moves it.

The runtime is as unkind as AWS: every first delivery of an event to a consumer may be held
back (so a consumer of a later event runs before one of an earlier event), the consumers due
at the same moment run in an order Hypothesis picks, a failed invocation is retried 60 s and
then 120 s later. After every step, for every request and every person:

- the request moved only along the domain's own state machine (`requests.MOVES`);
- each person's texts about it came **in order** and are a prefix of what its state allows:
  the caller never gets "can't talk" after any text saying they can (a late "free now" may
  come alone, when it overtook the time-out), and gets at most one of each;
- the receiver was invited at most once, and only while the request waited for them and its
  answer window was open, at the moment of sending;
- once nothing is left to run, every text its state calls for was sent, every request past
  the moment its time-out is due has ended, and every open request has its timer.

Some people have linked LINE (issue 18): their messages are LINE pushes (the invitation as two
buttons), a push LINE refuses falls back to SMS, and a tap on a button answers like the page.
A message counts the same whichever channel carried it, so each invariant above holds per
person across both: at most one of each, in order, whatever the channel.

CI runs HOTLINE_STATEFUL_EXAMPLES examples (default 25) of up to 20 steps each; run with -s
for the counts: steps, how many first deliveries ran before an earlier event's, and how often
each scenario came up.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from hotline_core import messages
from hotline_core.adapters.timer import schedule_name
from hotline_core.line_messages import postback_data
from hotline_core.requests import (
    LINK_LIFETIME,
    OVERDUE_AFTER,
    State,
    Step,
    hash_token,
    time_out_expected_by,
    timer_fire_at,
)
from hotline_tools.local.engine import Invocation, LocalHotline
from hotline_tools.local.line_fake import simulated_user_id
from tests.conftest import FORM, MIZUKI, NAMES, ROOT, TAKUMI, StoppedClock, request_item
from tests.integration.state_model import (
    CALLER_TEXTS,
    ERROR_PROMPT,
    GREETING,
    RECEIVER_TEXTS,
    Request,
    _after,
    _complete,
    _prefix_of_one,
    _reachable,
    _state_of,
)

PHONES = (TAKUMI, MIZUKI)
OTHER = {TAKUMI: MIZUKI, MIZUKI: TAKUMI}
EXAMPLES = int(os.environ.get("HOTLINE_STATEFUL_EXAMPLES", "25"))
LINK_LIFETIME_SECONDS = int(LINK_LIFETIME.total_seconds()) + 1
STEPS = 20
# Long enough for anything held, retried twice or fired late to have run.
SETTLE_SECONDS = int(OVERDUE_AFTER.total_seconds()) + 600
SCENARIOS = {
    "call: new request",
    "call: repeat while waiting",
    "call: repeat after the window, time-out on its way",
    "call: mutual",
    "page viewed",
    "yes in time",
    "late yes after the time-out",
    "no",
    "answer after the request settled",
    "garbage answer",
    "same answer repeated",
    "timer fired again",
    "sms throttled",
    "a consumer failed and Lambda retried it",
    "invitation not sent: settled or closed",
    "first delivery overtook an earlier event's",
    "late yes texted before the time-out text (which then never came)",
    "event delivered again",
    "replay of archived events",
    "link expired",
    "line: people linked",
    "line: invited by button",
    "line: told by line",
    "line: push refused, sms instead",
    "line: tap on a button",
}
SEEN: Counter[str] = Counter()
# Each rule's own generator for holds, orders and Scheduler's moments: drawn as one seed, so
# how many draws a step makes (it depends on what falls due) never changes Hypothesis's data.
CHAOS = st.integers(min_value=0, max_value=2**32 - 1).map(random.Random)
AFTER = st.sampled_from([0, 0, 0, 30, 130, 190, 600])
# How long a first delivery is held: mostly at once, sometimes past the next event's.
HOLD = [0, 0, 0, 0, 1, 5, 30, 70, 200]
# Errors a handler may raise in this test, each a retry by design: a throttled SMS that
# outlasted its in-invocation retries, and a "free now" waiting for a "can't talk" in flight.
EXPECTED_ERRORS = {"Throttling", "ThrottlingException", "ClientError", "OutcomeInFlight"}


class Hotline(RuleBasedStateMachine):
    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.local = LocalHotline(root=ROOT)
        self.local.clock = StoppedClock()  # before start(): the handlers read this clock
        self.local.start()
        self.started = self.local.clock.now()
        self.chaos = random.Random(0)  # replaced by each rule's Hypothesis-drawn one
        self.local.delay_deliveries = self._hold
        self.local.choose_next = self._choose
        self.local.schedule_moment = self._moment
        self._real_invoke = self.local.host.invoke
        self.local.host.invoke = self._invoke  # type: ignore[method-assign]
        self.known: dict[str, Request] = {}
        self.states: dict[str, State | None] = {}  # as of the end of the previous step
        self.violations: list[str] = []
        self.sms_seen = 0
        self.line_users: dict[str, str] = {}  # LINE user id -> phone
        SEEN["examples"] += 1

    def teardown(self) -> None:
        self.local.stop()

    # --- the unkind runtime, driven by Hypothesis --------------------------------------
    def _hold(self, invocation: Invocation) -> float:
        return self.chaos.choice(HOLD)

    def _choose(self, due: list[Invocation]) -> int:
        index = self.chaos.randrange(len(due))
        picked = due[index]
        if picked.source == "event" and picked.attempt == 1:
            earlier = [
                p
                for p in self.local.pending()
                if p.source == "event"
                and p.attempt == 1
                and p.id < picked.id
                and _event_id(p) != _event_id(picked)
            ]
            if earlier:
                SEEN["first delivery overtook an earlier event's"] += 1
        return index

    def _moment(self, name: str, earliest: datetime, latest: datetime) -> datetime:
        span = int((latest - earliest).total_seconds())
        return earliest + timedelta(seconds=self.chaos.randint(0, span))

    def _invoke(self, logical_id: str, event):
        """Every handler run: which texts it sent, about which request, checked as sent."""
        # moto's own record, not the engine's (the flow runs a Lambda on another thread
        # while the engine's lock is held).
        before, line_before = len(_sent_sms()), len(self.local.line_messages())
        try:
            return self._real_invoke(logical_id, event)
        except Exception as exc:
            if type(exc).__name__ in EXPECTED_ERRORS:
                SEEN["a consumer failed and Lambda retried it"] += 1
            raise
        finally:
            sent = [{"to": to, "body": body} for to, body in _sent_sms()[before:]]
            pushed = [
                {"to": self.line_users.get(m["to"], m["to"]), "line": m["messages"]}
                for m in self.local.line_messages()[line_before:]
                if m["kind"] == "push"
            ]
            if sent or pushed:
                self._attribute(logical_id, event, sent + pushed)

    def _attribute(self, logical_id: str, event, sent: list[dict]) -> None:
        data = event.get("detail", {}).get("data", {}) if isinstance(event, dict) else {}
        if event.get("detail-type") == "CallRequested":
            self._learn(data)  # its invitation may go out while the call is still running
        request = self.known.get(data.get("request_id", ""))
        if request is None:
            self.violations.append(f"{logical_id} texted about no known request: {sent}")
            return
        kinds = {body: (kind, to) for kind, (to, body) in request.bodies().items()}
        now = self.local.clock.now()
        for message in sent:
            kind, to = self._kind_of(request, message, kinds)
            if kind is None or to != message["to"]:
                self.violations.append(f"unexpected text {message} for {request.request_id}")
                continue
            if kind == "invite":
                state = self._state(request.request_id)
                if state is not State.INQUIRY or now >= request.answer_by:
                    self.violations.append(
                        f"invitation for {request.request_id} sent in {state} at {now}"
                    )
            (request.receiver_texts if to == request.receiver else request.caller_texts).append(
                kind
            )

    def _kind_of(
        self, request: Request, message: dict, kinds: dict
    ) -> tuple[str | None, str | None]:
        """Which of the request's messages this is, by SMS or by LINE (the invitation as
        buttons carrying this request's token; any other as the SMS's text)."""
        if "body" in message:
            if message["to"] in self.line_users.values():
                SEEN["line: push refused, sms instead"] += 1
            return kinds.get(message["body"], (None, None))
        [line] = message["line"]
        if line["type"] == "template":
            datas = [a["data"] for a in line["template"]["actions"]]
            if datas == [postback_data("yes", request.token), postback_data("no", request.token)]:
                SEEN["line: invited by button"] += 1
                return "invite", request.receiver
            return None, None
        SEEN["line: told by line"] += 1
        return kinds.get(line["text"], (None, None))

    # --- reading the real system -------------------------------------------------------
    def _current_states(self) -> dict[str, State]:
        table = self.local.stack.output("RequestsTableName")
        pages = self.local.client("dynamodb").get_paginator("scan").paginate(TableName=table)
        items = {item["pk"]["S"]: item for page in pages for item in page["Items"]}
        states = {}
        for request_id in self.known:
            pointer = items[f"REQ#{request_id}"]
            states[request_id] = _state_of(items[f"LINK#{pointer['link_hash']['S']}"])
        return states

    def _state(self, request_id: str) -> State:
        item = request_item(self.local, request_id)
        assert item is not None, request_id
        return _state_of(item)

    def _pending_timers(self) -> set[str]:
        pages = self.local.client("scheduler").get_paginator("list_schedules").paginate()
        return {s["Name"] for page in pages for s in page["Schedules"]}

    def _link_expired(self, request_id: str) -> bool:
        return self.local.clock.now() >= self.known[request_id].requested_at + LINK_LIFETIME

    def _enqueue(self, event: dict) -> int:
        """Put an event on every consumer queue whose rule takes its detail-type."""
        queued = 0
        for fn in self.local.stack.functions.values():
            for rule_, url in zip(fn.spec.rules, fn.target_queues, strict=True):
                if event["detail-type"] in rule_.pattern.get("detail-type", []):
                    self.local.client("sqs").send_message(
                        QueueUrl=url, MessageBody=json.dumps(event)
                    )
                    queued += 1
        return queued

    def _wait(self, seconds: int) -> None:
        if seconds:
            self.local.advance(seconds)

    # --- rules -------------------------------------------------------------------------
    @initialize(target=requests)
    def first_call(self):
        """Every example starts with a conversation to play with."""
        return self._call(TAKUMI)

    @initialize(linked=st.sampled_from([(), (MIZUKI,), (TAKUMI,), (TAKUMI, MIZUKI)]))
    def link_line(self, linked):
        """Some people link LINE, as they do: a code from the operator, sent to the account."""
        for phone in linked:
            user = simulated_user_id(phone)
            answer = self.local.line_send(
                {"from": user, "type": "message", "text": self.local.line_code(phone)}
            )
            assert answer["status"] == 200, answer
            self.line_users[user] = phone
        if linked:
            SEEN["line: people linked"] += 1

    @rule(times=st.integers(1, 4), status=st.sampled_from([500, 429, 400]), chaos=CHAOS)
    def line_refuses(self, times, status, chaos):
        """The Messaging API fails the next calls: a push retried, then sent by SMS."""
        self.chaos = chaos
        self.local.arm_fault(service="line", times=times, error=status)

    @rule(request=requests, answer=st.sampled_from(["yes", "no"]), after=AFTER, chaos=CHAOS)
    def tap_button(self, request, answer, after, chaos):
        """The receiver taps a button of the invitation LINE brought them, if it did."""
        self.chaos = chaos
        self._wait(after)
        req = self.known[request]
        data = postback_data(answer, req.token)  # type: ignore[arg-type]
        user = next((u for u, phone in self.line_users.items() if phone == req.receiver), None)
        invited = user is not None and any(
            a["data"] == data
            for m in self.local.line_messages()
            if m["to"] == user and m["kind"] == "push"
            for message in m["messages"]
            if message["type"] == "template"
            for a in message["template"]["actions"]
        )
        if not invited:
            return
        SEEN["line: tap on a button"] += 1
        before = self._state(request)
        step = Step.ACCEPT if answer == "yes" else Step.DECLINE
        expected = before if self._link_expired(request) else _after(before, step)
        reply = self.local.line_send({"from": user, "type": "postback", "data": data})
        assert reply["status"] == 200, reply
        assert self._state(request) == expected, (before, answer, expected)

    @rule(target=requests, caller=st.sampled_from(PHONES), after=AFTER, chaos=CHAOS)
    def call(self, caller, after, chaos):
        self.chaos = chaos
        self._wait(after)
        return self._call(caller)

    def _call(self, caller: str):
        now = self.local.clock.now()
        receiver = OTHER[caller]
        states = self._current_states()
        mine = [
            rid
            for rid, req in self.known.items()
            if req.caller == caller
            and states[rid] is State.INQUIRY
            and now < time_out_expected_by(req.answer_by)
        ]
        theirs = [
            rid
            for rid, req in self.known.items()
            if req.caller == receiver and states[rid] is State.INQUIRY and now < req.answer_by
        ]
        events_before = len(self.local.events())

        result = self.local.call(caller)

        prompts, request_id = result["prompts"], result["contact_id"]
        assert ERROR_PROMPT not in prompts, (prompts, self.local.handler_errors)
        assert prompts[0] == GREETING, prompts  # spoken before the Lambda runs
        prompts = prompts[1:]
        new_calls = [
            e["detail"]["data"]
            for e in self.local.events()[events_before:]
            if e["detail-type"] == "CallRequested" and "replay-name" not in e
        ]
        if mine:
            late = now >= self.known[mine[0]].answer_by
            SEEN[
                "call: repeat after the window, time-out on its way"
                if late
                else "call: repeat while waiting"
            ] += 1
            assert prompts == [messages.text("prompt_waiting", "ja", receiver=NAMES[receiver])], (
                prompts
            )
            assert new_calls == [], new_calls  # no second request
            return multiple()
        if theirs:
            SEEN["call: mutual"] += 1
            assert prompts == [messages.text("prompt_mutual", "ja", receiver=NAMES[receiver])], (
                prompts
            )
            assert new_calls == [] and self._state(theirs[0]) is State.ACCEPTED_MUTUAL
            return multiple()
        SEEN["call: new request"] += 1
        assert prompts == [messages.text("prompt_asking", "ja", receiver=NAMES[receiver])], prompts
        assert [data["request_id"] for data in new_calls] == [request_id], new_calls
        (data,) = new_calls
        assert (data["caller"]["phone"], data["receiver"]["phone"]) == (caller, receiver)
        self._learn(data)
        return multiple(request_id)

    def _learn(self, data: dict) -> None:
        if data["request_id"] in self.known:
            return
        self.known[data["request_id"]] = Request(
            request_id=data["request_id"],
            caller=data["caller"]["phone"],
            receiver=data["receiver"]["phone"],
            link=data["link"],
            requested_at=datetime.fromisoformat(data["requested_at"]),
            answer_by=datetime.fromisoformat(data["answer_by"]),
        )
        self.states[data["request_id"]] = None

    @rule(request=requests, after=AFTER, chaos=CHAOS)
    def view_page(self, request, after, chaos):
        self.chaos = chaos
        self._wait(after)
        SEEN["page viewed"] += 1
        before, events_before = self._state(request), len(self.local.events())
        page = self.local.http("GET", self.known[request].path)
        expired = self._link_expired(request)
        if expired:
            SEEN["link expired"] += 1
        assert page is not None and page.status == (410 if expired else 200)
        assert self._state(request) == before  # GET changes nothing: SMS apps prefetch links
        assert len(self.local.events()) == events_before

    def _answer(self, request: str, answer: str, times: int) -> None:
        step = Step.ACCEPT if answer == "yes" else Step.DECLINE
        for i in range(times):
            before = self._state(request)
            expected = _after(before, step)
            expired = self._link_expired(request)
            page = self.local.http(
                "POST", self.known[request].path, body=f"answer={answer}".encode(), headers=FORM
            )
            assert page is not None
            if expired:
                SEEN["link expired"] += 1
                assert page.status == 410
                expected = before
            else:
                assert page.status == 200, page
            # The answer's own consumers may already have run: read the state the answer
            # left, not what a delayed consumer could not have changed anyway.
            assert self._state(request) == expected, (before, answer, expected)
            if i == 0:
                if expected == before:
                    SEEN["answer after the request settled"] += 1
                elif expected is State.ACCEPTED_LATE:
                    SEEN["late yes after the time-out"] += 1
                else:
                    SEEN["yes in time" if answer == "yes" else "no"] += 1
        if times > 1:
            SEEN["same answer repeated"] += 1

    @rule(request=requests, answer=st.sampled_from(["yes", "no"]), after=AFTER, chaos=CHAOS)
    def tap(self, request, answer, after, chaos):
        self.chaos = chaos
        self._wait(after)
        self._answer(request, answer, 1)

    @rule(
        request=requests,
        answer=st.sampled_from(["yes", "no"]),
        times=st.integers(2, 3),
        chaos=CHAOS,
    )
    def tap_repeatedly(self, request, answer, times, chaos):
        """A double tap, a reload that re-posts, a second phone with the same SMS."""
        self.chaos = chaos
        self._answer(request, answer, times)

    @rule(
        request=requests,
        body=st.sampled_from([b"answer=maybe", b"answer=", b"answer=YES", b"", b"answer=yes "]),
    )
    def tap_garbage(self, request, body):
        SEEN["garbage answer"] += 1
        before = self._state(request)
        page = self.local.http("POST", self.known[request].path, body=body, headers=FORM)
        assert page is not None and page.status == (410 if self._link_expired(request) else 400)
        assert self._state(request) == before

    @rule(
        seconds=st.sampled_from([0, 30, 59, 61, 119, 121, 180, 600, SETTLE_SECONDS]),
        chaos=CHAOS,
    )
    def advance(self, seconds, chaos):
        """Time passes: held deliveries, retries and timers run on the way."""
        self.chaos = chaos
        self._wait(seconds)

    @rule(chaos=CHAOS)
    def a_day_passes(self, chaos):
        """A tap on yesterday's SMS: every link has expired."""
        self.chaos = chaos
        self._wait(LINK_LIFETIME_SECONDS)

    @rule(to=st.sampled_from(PHONES), times=st.integers(1, 8), chaos=CHAOS)
    def sms_throttled(self, to, times, chaos):
        """The provider throttles the next texts to one phone: retried inside the invocation
        (4 attempts), then by Lambda a minute and three minutes later."""
        self.chaos = chaos
        SEEN["sms throttled"] += 1
        self.local.arm_fault(service="sms", to=to, times=times, error="Throttling")

    @rule(request=requests, throttled=st.sampled_from([0, 2, 5, 6, 8]), chaos=CHAOS)
    def time_out_then_late_yes(self, request, throttled, chaos):
        """The story behind issue 14: the time-out's text to the caller is throttled (or held
        back), the receiver says yes a moment too late, and the retried "can't talk" must
        never follow the "free now" that went out meanwhile."""
        self.chaos = chaos
        req = self.known[request]
        if throttled:
            SEEN["sms throttled"] += 1
            self.local.arm_fault(service="sms", to=req.caller, times=throttled, error="Throttling")
        fired_by = timer_fire_at(req.answer_by) + timedelta(seconds=60)
        self._wait(max(0, int((fired_by - self.local.clock.now()).total_seconds())))
        self._answer(request, "yes", 1)

    @rule(request=requests, carries_link=st.booleans(), chaos=CHAOS)
    def timer_fires_again(self, request, carries_link, chaos):
        """Scheduler delivers at least once: the timer fires again after it already fired
        (or after an answer cancelled it), with or without the link hash (older schedules)."""
        self.chaos = chaos
        if schedule_name(request) in self._pending_timers():
            return  # not fired yet: Scheduler never fires before the minute it was set for
        SEEN["timer fired again"] += 1
        before = self._state(request)
        payload = {"request_id": request}
        if carries_link:
            payload["link_hash"] = hash_token(self.known[request].token)
        answer = self.local.host.invoke("AnswerTimerFunction", payload)
        # Applied only when the timer was started late (a held CallRequested) and is still due.
        assert answer["outcome"] != "applied" or before is State.INQUIRY, answer
        self.local.pump()

    @rule(
        picks=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=5),
        times=st.integers(1, 3),
        chaos=CHAOS,
    )
    def deliver_old_events_again(self, picks, times, chaos):
        """Duplicated and reordered: events already delivered arrive again, each up to three
        times, in any order, after newer ones."""
        self.chaos = chaos
        seen = self.local.events()
        if not seen:
            return
        indices = [pick % len(seen) for pick in picks]
        for index in indices:
            for _ in range(times):
                assert self._enqueue(seen[index]) > 0, seen[index]["detail-type"]
        self.local.pump()
        SEEN["event delivered again"] += 1
        assert len(self.local.events()) >= len(seen)

    @rule(
        start=st.integers(min_value=-60, max_value=4_000),
        length=st.one_of(st.just(None), st.integers(min_value=0, max_value=4_000)),
    )
    def replay(self, start, length):
        """Replay an archived window through the bus: it texts nobody, changes nothing."""
        begin = self.started + timedelta(seconds=start)
        end = self.local.clock.now() if length is None else begin + timedelta(seconds=length)
        if end < begin:
            return
        sms_before, states_before = len(self.local.sms()), self._current_states()
        line_before = len(self.local.line_messages())
        result = self.local.replay(begin, end)
        if result["replayed"]:
            SEEN["replay of archived events"] += 1
        # Nothing else was due (every step runs what falls due), so this is the replay's own.
        assert len(self.local.sms()) == sms_before
        assert len(self.local.line_messages()) == line_before
        assert self._current_states() == states_before

    # --- invariants --------------------------------------------------------------------
    @invariant()
    def no_handler_raised_but_by_design(self):
        unexpected = [e for e in self.local.handler_errors if e[1] not in EXPECTED_ERRORS]
        assert unexpected == [], unexpected
        assert self.local.dead_letters == []
        assert self.local.errors == [], self.local.errors
        assert self.violations == [], self.violations

    @invariant()
    def every_request_moved_legally_and_texted_in_order(self):
        SEEN["checks"] += 1
        states = self._current_states()
        quiet = not self.local.pending()
        now = self.local.clock.now()
        for rid, req in self.known.items():
            before, state = self.states[rid], states[rid]
            assert state in _reachable(before), (rid, before, state)
            callers, receivers = CALLER_TEXTS[state], RECEIVER_TEXTS[state]
            assert _prefix_of_one(req.caller_texts, callers), (rid, state, req.caller_texts)
            assert _prefix_of_one(req.receiver_texts, receivers), (rid, state, req.receiver_texts)
            if req.caller_texts == ["accepted_late"]:
                SEEN["late yes texted before the time-out text (which then never came)"] += 1
            if state is not State.INQUIRY and req.receiver_texts in ([], ["mutual_second"]):
                SEEN["invitation not sent: settled or closed"] += 1
            if quiet:
                # Nothing left to run: every text the state calls for went out, and every
                # request whose time-out is due has ended.
                assert _complete(req.caller_texts, callers), (rid, state, req.caller_texts)
                assert now < time_out_expected_by(req.answer_by) or state is not State.INQUIRY, (
                    rid,
                    "never ended",
                )
        self.states.update(states)
        if quiet:
            open_requests = {schedule_name(r) for r, s in states.items() if s is State.INQUIRY}
            assert open_requests <= self._pending_timers()


def _sent_sms() -> list[tuple[str, str]]:
    from moto.sns.models import sns_backends

    from hotline_tools.local.template import ACCOUNT, REGION

    return list(sns_backends[ACCOUNT][REGION].sms_messages.values())


def _event_id(invocation: Invocation):
    event = invocation.event
    return event.get("id") if isinstance(event, dict) else None


SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_random_interleavings_keep_every_guarantee():
    SEEN.clear()
    started = time.perf_counter()
    run_state_machine_as_test(Hotline, settings=SETTINGS)
    examples, checks = SEEN.pop("examples"), SEEN.pop("checks")
    print(
        f"\nstateful: {examples} examples, {checks} invariant checks (after the first call and "
        f"after each of up to {STEPS} rules per example) in {time.perf_counter() - started:.0f} "
        "s; " + ", ".join(f"{name}: {SEEN[name]}" for name in sorted(SCENARIOS))
    )
