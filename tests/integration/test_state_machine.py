"""A stateful property test: random interleavings of calls (new, repeated, mutual), page
views, taps (yes, no, garbage, repeated), timer firings (on time, late, twice), duplicated and
reordered deliveries and replays, against the whole hotline in-process, on a clock that moves
only when the test moves it. Each rule checks its own outcome against a model; after every
step, per request:

- the receiver got exactly one invitation (its link, to the right phone);
- every SMS sent in that step is one the requests' transitions in that step call for, and
  every text those transitions call for was sent: the caller gets exactly one outcome message
  plus, after a time-out, at most one late "free now" (a mutual call: one text each);
- the request moved only along an allowed transition;
- a timer is pending exactly while its request is open;
- no handler raised, not even once before a retry made it good.

CI runs HOTLINE_STATEFUL_EXAMPLES examples (default 25) of up to 20 steps each; run with -s
for the counts and how often each scenario came up.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
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
from hotline_core.requests import LINK_LIFETIME, hash_token, timer_fire_at
from hotline_tools.local.engine import LocalHotline
from tests.conftest import ROOT, StoppedClock, request_item

TAKUMI, MIZUKI = "+819011112222", "+817033334444"
PHONES = (TAKUMI, MIZUKI)
NAMES = {TAKUMI: "タクミ", MIZUKI: "ミズキ"}  # tests/events/phonenumber.json
OTHER = {TAKUMI: MIZUKI, MIZUKI: TAKUMI}
FORM = {"content-type": "application/x-www-form-urlencoded"}
ALLOWED = {
    (None, "inquiry"),
    ("inquiry", "accepted"),
    ("inquiry", "accepted/mutual"),
    ("inquiry", "refused/declined"),
    ("inquiry", "refused/timed_out"),
    ("refused/timed_out", "accepted/late"),
}
EXAMPLES = int(os.environ.get("HOTLINE_STATEFUL_EXAMPLES", "25"))
LINK_LIFETIME_SECONDS = int(LINK_LIFETIME.total_seconds()) + 1
STEPS = 20
SCENARIOS = {
    "call: new request",
    "call: repeat while waiting",
    "call: mutual",
    "page viewed",
    "yes in time",
    "late yes after the time-out",
    "no",
    "answer after the request settled",
    "garbage answer",
    "same answer repeated",
    "timer fired on time",
    "timer fired late",
    "timer fired twice",
    "event delivered again",
    "events delivered out of order",
    "replay of archived events",
    "link expired",
}
SEEN: Counter[str] = Counter()
# Time a rule lets pass before it acts: at once, inside the window, around the timer, late.
AFTER = st.sampled_from([0, 0, 0, 30, 130, 190, 600])


def _flow_error_prompt() -> str:
    """What the hotline flow says when CallRequestFunction fails: a call must never hear it."""
    flow = json.loads((ROOT / "contact_flow/hotline.json").read_text(encoding="utf-8"))
    (action,) = [a for a in flow["Actions"] if a["Identifier"] == "announce-unavailable"]
    return str(action["Parameters"]["Text"])


ERROR_PROMPT = _flow_error_prompt()


@dataclass(frozen=True)
class Request:
    caller: str
    receiver: str
    link: str
    requested_at: datetime
    answer_by: datetime

    @property
    def path(self) -> str:
        return "/" + self.link.split("/", 3)[3]

    @property
    def token(self) -> str:
        return self.link.rsplit("/", 1)[1]

    @property
    def fire_at(self) -> datetime:
        return timer_fire_at(self.answer_by)


def texts(request: Request, state: str | None) -> Counter[tuple[str, str]]:
    """Every SMS a request in `state` has caused, as (to, body): what the model allows."""
    if state is None:
        return Counter()
    caller, receiver = request.caller, request.receiver
    they, you = NAMES[receiver], NAMES[caller]

    def text(key: str, **values: str) -> str:
        return messages.text(key, "ja", **values)

    sent = [(receiver, text("invite", caller=you, link=request.link))]
    if state == "accepted":
        sent.append((caller, text("accepted", receiver=they, phone=receiver)))
    elif state == "accepted/mutual":
        sent.append((caller, text("mutual_first", other=they, phone=receiver)))
        sent.append((receiver, text("mutual_second", other=you, phone=caller)))
    elif state == "refused/declined":
        sent.append((caller, text("declined", receiver=they)))
    elif state in ("refused/timed_out", "accepted/late"):
        sent.append((caller, text("timed_out", receiver=they)))
        if state == "accepted/late":
            sent.append((caller, text("accepted_late", receiver=they, phone=receiver)))
    return Counter(sent)


def reachable(state: str | None) -> set[str | None]:
    """`state` and every state a chain of allowed transitions leads to from it (one rule
    may take two: a wait that times a request out, then a late yes)."""
    seen, todo = {state}, [state]
    while todo:
        current = todo.pop()
        for before, after in ALLOWED:
            if before == current and after not in seen:
                seen.add(after)
                todo.append(after)
    return seen


def after_answer(state: str, answer: str) -> str:
    """The state a yes or a no through the link leads to (a settled request stays put)."""
    if answer == "yes" and state == "inquiry":
        return "accepted"
    if answer == "yes" and state == "refused/timed_out":
        return "accepted/late"
    if answer == "no" and state == "inquiry":
        return "refused/declined"
    return state


class Hotline(RuleBasedStateMachine):
    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.local = LocalHotline(root=ROOT)
        self.local.clock = StoppedClock()  # before start(): the handlers read this clock
        self.local.start()
        self.started = self.local.clock.now()
        self.known: dict[str, Request] = {}
        self.states: dict[str, str | None] = {}  # as of the end of the previous step
        self.sms_seen = 0
        SEEN["examples"] += 1

    def teardown(self) -> None:
        self.local.stop()

    # --- reading the real system -------------------------------------------------------
    def _current_states(self) -> dict[str, str | None]:
        table = self.local.stack.output("RequestsTableName")
        pages = self.local.client("dynamodb").get_paginator("scan").paginate(TableName=table)
        items = {item["pk"]["S"]: item for page in pages for item in page["Items"]}
        states = {}
        for request_id in self.known:
            pointer = items[f"REQ#{request_id}"]
            states[request_id] = _state_of(items[f"LINK#{pointer['link_hash']['S']}"])
        return states

    def _state(self, request_id: str) -> str:
        item = request_item(self.local, request_id)
        assert item is not None, request_id
        return _state_of(item)

    def _pending_timers(self) -> set[str]:
        pages = self.local.client("scheduler").get_paginator("list_schedules").paginate()
        return {s["Name"] for page in pages for s in page["Schedules"]}

    def _open(self, caller: str, now: datetime, states: dict[str, str | None]) -> list[str]:
        """Requests by `caller` still waiting for an answer at `now`."""
        return [
            rid
            for rid, req in self.known.items()
            if req.caller == caller and states[rid] == "inquiry" and now < req.answer_by
        ]

    def _link_expired(self, request_id: str) -> bool:
        return self.local.clock.now() >= self.known[request_id].requested_at + LINK_LIFETIME

    def _enqueue(self, event: dict) -> int:
        """Put an event on every consumer queue whose rule takes its detail-type (every
        hotline event has at least one consumer)."""
        queued = 0
        for fn in self.local.stack.functions.values():
            for rule_, url in zip(fn.spec.rules, fn.target_queues, strict=True):
                if event["detail-type"] in rule_.pattern.get("detail-type", []):
                    self.local.client("sqs").send_message(
                        QueueUrl=url, MessageBody=json.dumps(event)
                    )
                    queued += 1
        return queued

    def _wait(self, seconds: int) -> dict[str, str | None]:
        """Let `seconds` pass: exactly the open requests whose timer falls due time out, each
        once, on time (within the minute Scheduler fires in) or late (the clock jumped).
        Rules wait before they act, so `self.states` is still what the system holds."""
        if seconds == 0:
            return dict(self.states)
        now = self.local.clock.now() + timedelta(seconds=seconds)
        due = {
            rid: req
            for rid, req in self.known.items()
            if self.states[rid] == "inquiry" and req.fire_at <= now
        }
        fired = self.local.advance(seconds)["fired"]
        assert fired == len(due), (fired, sorted(due))
        states = self._current_states()
        for rid in self.known:
            expected = "refused/timed_out" if rid in due else self.states[rid]
            assert states[rid] == expected, (rid, self.states[rid], states[rid])
        for req in due.values():
            late = now - req.fire_at >= timedelta(minutes=1)
            SEEN["timer fired late" if late else "timer fired on time"] += 1
        return states

    # --- rules -------------------------------------------------------------------------
    @initialize(target=requests)
    def first_call(self):
        """Every example starts with a conversation to play with (Hypothesis switches some
        rules off in each example: without this, many would never get past "no request")."""
        return self._call(TAKUMI, {})

    @rule(target=requests, caller=st.sampled_from(PHONES), after=AFTER)
    def call(self, caller, after):
        return self._call(caller, self._wait(after))

    def _call(self, caller: str, states: dict[str, str | None]):
        now = self.local.clock.now()
        receiver = OTHER[caller]
        mine, theirs = self._open(caller, now, states), self._open(receiver, now, states)
        events_before = len(self.local.events())

        result = self.local.call(caller)

        prompts, request_id = result["prompts"], result["contact_id"]
        assert ERROR_PROMPT not in prompts, (prompts, self.local.handler_errors)
        new_calls = [
            e["detail"]["data"]
            for e in self.local.events()[events_before:]
            if e["detail-type"] == "CallRequested"
        ]
        if mine:
            SEEN["call: repeat while waiting"] += 1
            assert prompts == [messages.text("prompt_waiting", "ja", receiver=NAMES[receiver])], (
                prompts
            )
            assert new_calls == [] and self._state(mine[0]) == "inquiry"
            return multiple()
        if theirs:
            SEEN["call: mutual"] += 1
            assert prompts == [messages.text("prompt_mutual", "ja", receiver=NAMES[receiver])], (
                prompts
            )
            assert new_calls == [] and self._state(theirs[0]) == "accepted/mutual"
            return multiple()
        SEEN["call: new request"] += 1
        assert prompts == [messages.text("prompt_asking", "ja", receiver=NAMES[receiver])], prompts
        assert [data["request_id"] for data in new_calls] == [request_id], new_calls
        (data,) = new_calls
        assert (data["caller"]["phone"], data["receiver"]["phone"]) == (caller, receiver)
        self.known[request_id] = Request(
            caller=caller,
            receiver=receiver,
            link=data["link"],
            requested_at=datetime.fromisoformat(data["requested_at"]),
            answer_by=datetime.fromisoformat(data["answer_by"]),
        )
        self.states[request_id] = None
        assert self._state(request_id) == "inquiry"
        return multiple(request_id)

    @rule(request=requests, after=AFTER)
    def view_page(self, request, after):
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
        before = self._state(request)
        expected = after_answer(before, answer)
        for _ in range(times):
            page = self.local.http(
                "POST", self.known[request].path, body=f"answer={answer}".encode(), headers=FORM
            )
            if self._link_expired(request):
                SEEN["link expired"] += 1
                assert page is not None and page.status == 410
                expected = before
            else:
                assert page is not None and page.status == 200, page
            assert self._state(request) == expected, (before, answer, expected)
        if expected == before:
            SEEN["answer after the request settled"] += 1
        elif expected == "accepted/late":
            SEEN["late yes after the time-out"] += 1
        else:
            SEEN["yes in time" if answer == "yes" else "no"] += 1
        if times > 1:
            SEEN["same answer repeated"] += 1

    @rule(request=requests, answer=st.sampled_from(["yes", "no"]), after=AFTER)
    def tap(self, request, answer, after):
        self._wait(after)
        self._answer(request, answer, 1)

    @rule(
        request=requests,
        answer=st.sampled_from(["yes", "no"]),
        times=st.integers(2, 3),
        after=AFTER,
    )
    def tap_repeatedly(self, request, answer, times, after):
        """A double tap, a reload that re-posts, a second phone with the same SMS."""
        self._wait(after)
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

    @rule(seconds=st.sampled_from([0, 30, 59, 61, 119, 121, 180, 600, LINK_LIFETIME_SECONDS]))
    def advance(self, seconds):
        """Time passes; now and then a whole link lifetime (a tap on yesterday's SMS)."""
        self._wait(seconds)

    @rule(request=requests, carries_link=st.booleans())
    def timer_fires_again(self, request, carries_link):
        """Scheduler delivers at least once: the timer fires again after it already fired
        (or after an answer cancelled it), with or without the link hash (older schedules)."""
        if schedule_name(request) in self._pending_timers():
            return  # not fired yet: Scheduler never fires early
        SEEN["timer fired twice"] += 1
        before = self._state(request)
        payload = {"request_id": request}
        if carries_link:
            payload["link_hash"] = hash_token(self.known[request].token)
        answer = self.local.host.invoke("AnswerTimerFunction", payload)
        assert answer["outcome"] != "applied", answer
        self.local.pump()
        assert self._state(request) == before

    @rule(
        picks=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=5),
        times=st.integers(1, 3),
    )
    def deliver_old_events_again(self, picks, times):
        """Duplicated and reordered: events already delivered (replayed ones too) arrive
        again, each up to three times, in any order, after newer ones (a CallRequested after
        its Accepted, say), all in one batch as concurrent retries would."""
        seen = self.local.events()
        if not seen:
            return
        indices = [pick % len(seen) for pick in picks]
        before = dict(self.states)  # nothing ran since the last check
        for index in indices:
            for _ in range(times):
                assert self._enqueue(seen[index]) > 0, seen[index]["detail-type"]
        self.local.pump()
        SEEN["event delivered again"] += 1
        if indices != sorted(indices):
            SEEN["events delivered out of order"] += 1
        assert self._current_states() == before
        assert len(self.local.events()) == len(seen)  # a consumer never publishes

    @rule(
        start=st.integers(min_value=-60, max_value=4_000),
        length=st.one_of(st.just(None), st.integers(min_value=0, max_value=4_000)),
    )
    def replay(self, start, length):
        """Replay an archived window (None: everything so far) through the bus."""
        begin = self.started + timedelta(seconds=start)
        end = self.local.clock.now() if length is None else begin + timedelta(seconds=length)
        if end < begin:
            return
        events_before = self.local.events()
        before = dict(self.states)  # nothing ran since the last check
        result = self.local.replay(begin, end)
        in_window = [
            e
            for e in events_before
            if "replay-name" not in e
            and begin <= datetime.fromisoformat(e["time"].replace("Z", "+00:00")) <= end
        ]
        assert result["replayed"] == len(in_window), (result, len(in_window))
        replayed = self.local.events()[len(events_before) :]
        assert [e["replay-name"] for e in replayed] == [result["replay_name"]] * len(in_window)
        if in_window:
            SEEN["replay of archived events"] += 1
        assert self._current_states() == before  # nothing answered, nothing timed out

    # --- invariants --------------------------------------------------------------------
    @invariant()
    def no_handler_raised(self):
        assert self.local.handler_errors == (), self.local.handler_errors
        assert self.local.dead_letters == []
        assert self.local.errors == []

    @invariant()
    def every_request_moved_legally_and_caused_exactly_its_texts(self):
        SEEN["checks"] += 1
        states = self._current_states()
        sms = self.local.sms()
        owed: Counter[tuple[str, str]] = Counter()
        for rid, req in self.known.items():
            before, now = self.states[rid], states[rid]
            assert now in reachable(before), (rid, before, now)
            owed += texts(req, now) - texts(req, before)
            invitations = [m for m in sms if req.token in m["body"]]
            assert [m["to"] for m in invitations] == [req.receiver], (rid, invitations)
        sent = Counter((m["to"], m["body"]) for m in sms[self.sms_seen :])
        assert sent == owed, {"sent": sent, "owed": owed}
        self.sms_seen = len(sms)
        self.states.update(states)

        # A timer runs exactly while its request is open: a duplicated or late
        # CallRequested never starts a second one, and no open request is left without one.
        open_requests = {schedule_name(r) for r, state in states.items() if state == "inquiry"}
        assert self._pending_timers() == open_requests


def _state_of(item: dict) -> str:
    status = item["status"]["S"]
    if status == "refused":
        return f"refused/{item['reason']['S']}"
    if status == "accepted" and item.get("mutual", {}).get("BOOL", False):
        return "accepted/mutual"
    if status == "accepted" and item.get("late", {}).get("BOOL", False):
        return "accepted/late"
    return status


SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_random_interleavings_keep_every_guarantee():
    SEEN.clear()
    run_state_machine_as_test(Hotline, settings=SETTINGS)
    examples, checks = SEEN.pop("examples"), SEEN.pop("checks")
    # Which scenarios a random run reaches varies (Hypothesis also switches rules off per
    # example): the counts are reported here; the walk below proves each is reachable.
    print(
        f"\nstateful: {examples} examples, {checks} invariant checks (after the first call and "
        f"after each of up to {STEPS} rules per example); "
        + ", ".join(f"{name}: {SEEN[name]}" for name in sorted(SCENARIOS))
    )


def test_one_walk_through_the_rules_reaches_every_scenario():
    """The same rules and invariants, in a fixed order that visits every scenario the random
    run is about, so each is known to be reachable and checked at least once per CI run."""
    SEEN.clear()
    machine = Hotline()

    def step(rule, *args):
        rule(*args)
        machine.no_handler_raised()
        machine.every_request_moved_legally_and_caused_exactly_its_texts()

    def latest() -> str:
        return list(machine.known)[-1]

    def until_due(request: str) -> int:
        return int((machine.known[request].fire_at - machine.local.clock.now()).total_seconds())

    try:
        machine.no_handler_raised()
        step(machine.first_call)  # A: Takumi asks Mizuki
        a = latest()
        step(machine.view_page, a, 0)
        step(machine.call, TAKUMI, 0)  # again, while A waits
        step(machine.tap_garbage, a, b"answer=maybe")
        step(machine.tap, a, "yes", 0)
        step(machine.tap_repeatedly, a, "yes", 3, 0)
        step(machine.timer_fires_again, a, True)  # after the yes cancelled it
        step(machine.call, MIZUKI, 0)  # B: Mizuki asks Takumi
        b = latest()
        step(machine.tap, b, "no", 0)
        step(machine.call, TAKUMI, 0)  # C
        c = latest()
        step(machine.advance, until_due(c))  # fires within its minute
        step(machine.timer_fires_again, c, False)
        step(machine.tap, c, "yes", 0)  # late: "free now"
        step(machine.call, TAKUMI, 0)  # D
        step(machine.advance, until_due(latest()) + 600)  # Scheduler ten minutes late
        step(machine.call, MIZUKI, 0)  # E: Mizuki asks Takumi ...
        step(machine.call, TAKUMI, 0)  # ... who calls back: mutual
        step(machine.deliver_old_events_again, [5, 1, 3, 0], 2)
        step(machine.replay, -60, None)
        step(machine.deliver_old_events_again, [len(machine.local.events()) - 1], 3)
        step(machine.view_page, c, 600)
        step(machine.advance, LINK_LIFETIME_SECONDS)  # a day later: every link has expired
        step(machine.tap, c, "no", 0)  # 410, nothing changes
        step(machine.call, TAKUMI, 0)  # and the hotline works as ever
    finally:
        machine.teardown()
    assert not SCENARIOS - set(SEEN), sorted(SCENARIOS - set(SEEN))


def test_no_handler_raised_sees_a_failure_that_a_retry_made_good():
    """The invariant reads the engine's record of every handler exception: a consumer that
    fails once and then succeeds leaves no dead letter, and still fails the invariant."""
    machine = Hotline()
    real = machine.local.host.invoke
    failures = []

    def flaky(logical_id, event):
        if logical_id == "InviteReceiverFunction" and not failures:
            failures.append(logical_id)
            raise ConnectionError("provider hiccup")
        return real(logical_id, event)

    try:
        machine.local.host.invoke = flaky
        machine.first_call()
        assert machine.local.dead_letters == [] and len(machine.local.sms()) == 1
        assert machine.local.handler_errors == (
            ("InviteReceiverFunction", "ConnectionError", "provider hiccup"),
        )
        with pytest.raises(AssertionError):
            machine.no_handler_raised()
    finally:
        machine.teardown()


def test_the_call_rule_fails_when_the_producer_raises():
    """The flow turns a CallRequestFunction exception into its apology: the rule must not
    take that for a call that worked."""
    machine = Hotline()
    real = machine.local.host.invoke

    def broken(logical_id, event):
        if logical_id == "CallRequestFunction":
            raise RuntimeError("directory unreadable")
        return real(logical_id, event)

    try:
        machine.local.host.invoke = broken
        with pytest.raises(AssertionError, match="ただいまご利用いただけません"):
            machine.call(TAKUMI, 0)
        assert machine.local.handler_errors[0] == (
            "CallRequestFunction",
            "RuntimeError",
            "directory unreadable",
        )
    finally:
        machine.teardown()
