"""A stateful property test: random interleavings of calls, page views, taps (yes, no,
garbage, repeated), timer firings (on time, late, twice), duplicated and reordered
deliveries and replays, against the whole hotline in-process. After every step:

- the receiver got exactly one invitation per request;
- each caller got exactly one outcome message per settled request, plus one "free now" per
  late accept, and nothing else;
- every request moved only along allowed transitions;
- no handler raised (nothing reached a dead-letter queue).
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from hotline_tools.local.engine import LocalHotline
from tests.conftest import ROOT, request_item

TAKUMI, MIZUKI = "+819011112222", "+817033334444"
PHONES = (TAKUMI, MIZUKI)
FORM = {"content-type": "application/x-www-form-urlencoded"}
ALLOWED = {
    ("inquiry", "accepted"),
    ("inquiry", "refused/declined"),
    ("inquiry", "refused/timed_out"),
    ("refused/timed_out", "accepted/late"),
}
EXAMPLES = int(os.environ.get("HOTLINE_STATEFUL_EXAMPLES", "25"))


class Hotline(RuleBasedStateMachine):
    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.local = LocalHotline(root=ROOT).start()
        self.started = self.local.clock.now()
        self.known: dict[str, dict[str, str]] = {}  # request id → {caller, receiver, path}
        self.states: dict[str, str] = {}

    def teardown(self) -> None:
        self.local.stop()

    # --- helpers ---------------------------------------------------------------------
    def _state(self, request_id: str) -> str:
        item = request_item(self.local, request_id)
        status = item["status"]["S"]
        if status == "refused":
            return f"refused/{item['reason']['S']}"
        if status == "accepted" and item["late"]["BOOL"]:
            return "accepted/late"
        return status

    def _mutual(self, request_id: str) -> bool:
        item = request_item(self.local, request_id)
        return bool(item.get("mutual", {}).get("BOOL", False))

    def _deliver_again(self, event: dict) -> None:
        for fn in self.local.stack.functions.values():
            for rule_, url in zip(fn.spec.rules, fn.target_queues, strict=True):
                if event["detail-type"] in rule_.pattern["detail-type"]:
                    self.local.client("sqs").send_message(
                        QueueUrl=url, MessageBody=json.dumps(event)
                    )
        self.local.pump()

    # --- rules -----------------------------------------------------------------------
    @rule(target=requests, caller=st.sampled_from(PHONES))
    def call(self, caller):
        self.local.call(caller)
        new = [
            e["detail"]["data"]
            for e in self.local.events()
            if e["detail-type"] == "CallRequested"
            and "replay-name" not in e
            and e["detail"]["data"]["request_id"] not in self.known
        ]
        ids = []
        for data in new:
            link = data["link"]
            self.known[data["request_id"]] = {
                "caller": data["caller"]["phone"],
                "receiver": data["receiver"]["phone"],
                "path": "/" + link.split("/", 3)[3],
                "token": link.rsplit("/", 1)[1],
            }
            self.states[data["request_id"]] = "inquiry"
            ids.append(data["request_id"])
        return ids[0] if ids else None

    @rule(request=requests)
    def view_page(self, request):
        if request is None:
            return
        before = self._state(request)
        page = self.local.http("GET", self.known[request]["path"])
        assert page.status == 200
        assert self._state(request) == before

    @rule(request=requests, answer=st.sampled_from(["yes", "no", "yes", "maybe"]))
    def tap(self, request, answer):
        if request is None:
            return
        page = self.local.http(
            "POST", self.known[request]["path"], body=f"answer={answer}".encode(), headers=FORM
        )
        assert page.status == (400 if answer == "maybe" else 200)

    @rule(seconds=st.sampled_from([0, 30, 59, 61, 119, 121, 180, 600]))
    def advance(self, seconds):
        self.local.advance(seconds)

    @rule(request=requests)
    def timer_fires_again(self, request):
        """Scheduler delivers at least once: the timer fires a second time, or late, after
        its schedule already fired (or was cancelled by an answer)."""
        if request is None:
            return
        pending = self.local.client("scheduler").list_schedules()["Schedules"]
        if any(s["Name"] == f"answer-{request}" for s in pending):
            return  # it has not fired yet: Scheduler never fires early
        self.local.host.invoke("AnswerTimerFunction", {"request_id": request})
        self.local.pump()

    @rule(pick=st.integers(min_value=0, max_value=10_000), times=st.integers(1, 3))
    def deliver_an_old_event_again(self, pick, times):
        """Duplicated and reordered: an event already delivered arrives again, after newer
        ones (a CallRequested after its Accepted, say)."""
        originals = [e for e in self.local.events() if "replay-name" not in e]
        if not originals:
            return
        event = originals[pick % len(originals)]
        for _ in range(times):
            self._deliver_again(event)

    @rule()
    def replay_everything(self):
        self.local.replay(self.started - timedelta(minutes=1), self.local.clock.now())

    # --- invariants ------------------------------------------------------------------
    @invariant()
    def nothing_failed(self):
        assert self.local.dead_letters == [], self.local.dead_letters[-1]["responsePayload"]
        assert self.local.errors == []

    @invariant()
    def one_invitation_per_request(self):
        sms = self.local.sms()
        for info in self.known.values():
            invitations = [m for m in sms if info["token"] in m["body"]]
            assert len(invitations) == 1
            assert invitations[0]["to"] == info["receiver"]

    @invariant()
    def a_timer_exists_only_while_a_request_is_open(self):
        """So a duplicated or late CallRequested never starts a second timer."""
        pending = {
            summary["Name"].removeprefix("answer-")
            for summary in self.local.client("scheduler").list_schedules()["Schedules"]
        }
        for request in pending:
            assert self._state(request) == "inquiry", request

    @invariant()
    def states_move_only_along_allowed_transitions(self):
        for request, previous in self.states.items():
            current = self._state(request)
            assert current == previous or (previous, current) in ALLOWED, (previous, current)
            self.states[request] = current

    @invariant()
    def each_caller_gets_one_outcome_and_at_most_one_late_message(self):
        link = re.compile(r"https?://")
        for phone in PHONES:
            to_phone = [m for m in self.local.sms(phone) if not link.search(m["body"])]
            expected = 0
            for request, info in self.known.items():
                if info["receiver"] == phone and self._mutual(request):
                    expected += 1  # the receiver called back: "they want to talk too"
                if info["caller"] != phone:
                    continue
                state = self._state(request)
                expected += state != "inquiry"
                expected += state == "accepted/late"  # the time-out, then "free now"
            assert len(to_phone) == expected, (phone, [m["body"] for m in to_phone])


Hotline.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestHotlineStateMachine = Hotline.TestCase
