"""The stateful property test's model of the hotline (tests/integration/test_state_machine.py):
a request as the test knows it, the texts each state allows each person, in order, and the
state machine's own table read back. Built on the domain's `requests.MOVES` and
`messages.text`, so the model and the code cannot drift apart."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from hotline_core import messages
from hotline_core.requests import ALLOWED, MOVES, State, Step, state_of
from hotline_core.requests import Reason as _Reason
from hotline_core.requests import Status as _Status
from tests.conftest import NAMES, ROOT


def _flow_error_prompt() -> str:
    """What the hotline flow says when CallRequestFunction fails: a call must never hear it."""
    flow = json.loads((ROOT / "contact_flow/hotline.json").read_text(encoding="utf-8"))
    (action,) = [a for a in flow["Actions"] if a["Identifier"] == "announce-unavailable"]
    return str(action["Parameters"]["Text"])


ERROR_PROMPT = _flow_error_prompt()


def _flow_greeting() -> str:
    """What the hotline flow says first, before its Lambda runs."""
    flow = json.loads((ROOT / "contact_flow/hotline.json").read_text(encoding="utf-8"))
    (action,) = [a for a in flow["Actions"] if a["Identifier"] == "greet"]
    return str(action["Parameters"]["Text"])


GREETING = _flow_greeting()


@dataclass
class Request:
    request_id: str
    caller: str
    receiver: str
    link: str
    requested_at: datetime
    answer_by: datetime
    caller_texts: list[str] = field(default_factory=list)  # kinds, in the order sent
    receiver_texts: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return "/" + self.link.split("/", 3)[3]

    @property
    def token(self) -> str:
        return self.link.rsplit("/", 1)[1]

    def bodies(self) -> dict[str, tuple[str, str]]:
        """Every text this request may cause: kind → (to, body)."""
        they, you = NAMES[self.receiver], NAMES[self.caller]

        def text(key: str, **values: str) -> str:
            return messages.text(key, "ja", **values)

        return {
            "invite": (self.receiver, text("invite", caller=you, link=self.link)),
            "accepted": (self.caller, text("accepted", receiver=they, phone=self.receiver)),
            "declined": (self.caller, text("declined", receiver=they)),
            "timed_out": (self.caller, text("timed_out", receiver=they)),
            "accepted_late": (
                self.caller,
                text("accepted_late", receiver=they, phone=self.receiver),
            ),
            "mutual_first": (self.caller, text("mutual_first", other=they, phone=self.receiver)),
            "mutual_second": (self.receiver, text("mutual_second", other=you, phone=self.caller)),
        }


# What the caller of a request in each state may have been told, in order: every sequence
# here is complete, and any prefix of one is a moment on the way to it.
CALLER_TEXTS: dict[State | None, list[list[str]]] = {
    None: [[]],
    State.INQUIRY: [[]],
    State.ACCEPTED: [["accepted"]],
    State.DECLINED: [["declined"]],
    State.TIMED_OUT: [["timed_out"]],
    # "free now" after "can't talk"; or alone, when it overtook the time-out's text.
    State.ACCEPTED_LATE: [["timed_out", "accepted_late"], ["accepted_late"]],
    State.ACCEPTED_MUTUAL: [["mutual_first"]],
}
RECEIVER_TEXTS: dict[State | None, list[list[str]]] = {
    state: [[], ["invite"]] for state in CALLER_TEXTS
} | {State.ACCEPTED_MUTUAL: [["mutual_second"], ["invite", "mutual_second"]]}


def _prefix_of_one(sent: list[str], allowed: list[list[str]]) -> bool:
    return any(sent == whole[: len(sent)] for whole in allowed)


def _complete(sent: list[str], allowed: list[list[str]]) -> bool:
    return sent in allowed


def _reachable(state: State | None) -> set[State | None]:
    seen, todo = {state}, [state]
    while todo:
        current = todo.pop()
        nexts = [State.INQUIRY] if current is None else [b for a, b in ALLOWED if a is current]
        for after in nexts:
            if after not in seen:
                seen.add(after)
                todo.append(after)
    return seen


def _after(state: State, step: Step) -> State:
    """Where `step` takes a request in `state`: the domain's own table."""
    return dict(MOVES[step]).get(state, state)


def _state_of(item: dict) -> State:
    return state_of(
        _Status(item["status"]["S"]),
        _Reason(item["reason"]["S"]) if "reason" in item else None,
        late=item.get("late", {}).get("BOOL", False),
        mutual=item.get("mutual", {}).get("BOOL", False),
    )
