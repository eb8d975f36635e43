"""A call to the hotline, one Connect invocation at a time: who is calling (the circle of the
dialled number), their PIN, whom they pick from the menu, then asking the receiver, or not:
a repeat, a mutual call, quiet hours. What the flow passes in and gets back is here too."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from hotline_core import messages
from hotline_core.benefits import FAILURE_WINDOW, LOCKOUT, MAX_WRONG_PINS
from hotline_core.events import CallRequested, Party
from hotline_core.outcomes import announce
from hotline_core.pins import check_proof, is_pin_shaped, pin_proof, verify_pin
from hotline_core.ports import EventPublisher, PublishFailed, RequestStore
from hotline_core.quiet import spoken_time, zone
from hotline_core.requests import CallRequest, CreateOutcome, Step, link_url, new_link

if TYPE_CHECKING:
    from hotline_core.benefits import AttemptGuard
    from hotline_core.directory import Circle, Directory, Person

# Only the call's producer imports this module, and it loads the directory (which imports PINs
# and quiet hours) for every call: no import here is worth deferring.
FlowStep = Literal["done", "pin", "choose"]
MAX_PIN_TRIES = 3  # PIN entries per call; the per-phone lockout spans calls
MAX_CHOICE_TRIES = 2  # a wrong or missing digit is asked again once, then goodbye
# The count the flow hands back (`tries`) in ASCII digits: str.isdigit() would also take "²"
# or "١" (and int() then fails on "²").
_TRIES = re.compile(r"[0-9]{1,2}")
_MENU_DIGITS = ("1", "2", "3", "4", "5", "6", "7", "8")  # a circle of 9: 8 others


@dataclass(frozen=True)
class CallInput:
    """What the contact flow passes back after it asked the caller something (Connect's
    `Details.Parameters`): nothing on the first invocation."""

    asked: str = ""  # "pin" or "choice": which question `pin` / `choice` answers
    pin: str = ""
    choice: str = ""
    wrong_pins: int = 0  # PINs this call got wrong so far (timeouts and short entries too)
    wrong_choices: int = 0  # menu digits this call got wrong or missing so far
    pin_proof: str = ""  # from an earlier invocation of this call whose PIN was right

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> CallInput:
        # The flow carries one count, `tries`, back with whichever question it asked.
        tries = parameters.get("tries", "")
        wrong = int(tries) if _TRIES.fullmatch(tries) else 0
        asked = parameters.get("asked", "")
        return cls(
            asked=asked,
            pin=parameters.get("pin", ""),
            choice=parameters.get("choice", ""),
            wrong_pins=wrong if asked == "pin" else 0,
            wrong_choices=wrong if asked == "choice" else 0,
            pin_proof=parameters.get("pin_proof", ""),
        )


@dataclass(frozen=True)
class CallAnswer:
    """What the contact flow gets back: a flat string map (Connect's STRING_MAP). `step`
    says what the flow does next: `done` (say `prompt`, hang up), `pin` (ask for the PIN
    with `prompt` and invoke again), `choose` (ask for one digit and invoke again)."""

    registered: bool
    prompt: str
    receiver_name: str = ""
    lang: str = "ja"
    created: bool = False
    step: FlowStep = "done"
    # How many answers to the question `step` asks were wrong so far: the flow hands it back
    # as `tries` with the next answer (one attribute, whichever the question).
    wrong_answers: int = 0
    pin_proof: str = ""
    outcome: str = ""  # for logs and metrics only

    def as_connect_map(self) -> dict[str, str]:
        return {
            "registered": "true" if self.registered else "false",
            "prompt": self.prompt,
            "receiver_name": self.receiver_name,
            "lang": self.lang,
            "step": self.step,
            "needs_pin": "true" if self.step == "pin" else "false",
            "needs_choice": "true" if self.step == "choose" else "false",
            "tries": str(self.wrong_answers),
            "pin_proof": self.pin_proof,
        }


def request_call(
    *,
    directory: Directory,
    caller_phone: str,
    hotline_number: str,
    request_id: str,
    now: datetime,
    answer_window: timedelta,
    link_base_url: str,
    store: RequestStore,
    bus: EventPublisher,
    call: CallInput | None = None,
    guard: AttemptGuard | None = None,
) -> CallAnswer:
    """One invocation of the hotline flow's Lambda: identify the caller in the circle of
    the dialled number, check their PIN when their entry has one, let them pick a receiver
    when the circle has more than two people, then ask the receiver (or not: a repeat, a
    mutual call, quiet hours). Nothing is created and nothing is texted before the PIN, nor
    for a withheld number (`caller_phone` ""): that caller is told to call again with it."""
    call = call or CallInput()
    if not caller_phone:
        # Withheld caller ID ("" from the Connect event): nobody to identify, nothing stored.
        return CallAnswer(False, messages.text("prompt_withheld", "ja"), outcome="withheld")
    circle = directory.circle_for(hotline_number)
    if circle is None:
        return CallAnswer(False, messages.text("prompt_no_circle", "ja"), outcome="no_circle")
    caller = circle.find(caller_phone)
    if caller is None:
        return CallAnswer(False, messages.text("prompt_unregistered", "ja"), outcome="unknown")
    proof = ""
    if caller.pin_hash:
        checked = _check_pin(caller, caller.pin_hash, call, request_id, now, guard)
        if isinstance(checked, CallAnswer):
            return checked
        proof = checked
    chosen = _choose(caller, circle, call, proof)
    if isinstance(chosen, CallAnswer):
        return chosen
    return _ask(
        caller=caller,
        receiver=chosen,
        hotline_number=hotline_number,
        request_id=request_id,
        now=now,
        answer_window=answer_window,
        link_base_url=link_base_url,
        store=store,
        bus=bus,
    )


def _say(
    caller: Person,
    key: str,
    outcome: str,
    step: FlowStep = "done",
    *,
    wrong_answers: int = 0,
    proof: str = "",
    receiver: Person | None = None,
    **values: str,
) -> CallAnswer:
    """The prompt `key` in the caller's language, filled with `values` (and `receiver`'s
    name as spoken: their reading when the directory has one), and the flow's next step;
    the count and the PIN proof ride along to the next invocation."""
    if receiver is not None:
        values["receiver"] = receiver.spoken_name
    return CallAnswer(
        registered=True,
        prompt=messages.text(key, caller.lang, **values),
        lang=caller.lang,
        step=step,
        wrong_answers=wrong_answers,
        pin_proof=proof,
        outcome=outcome,
        receiver_name=receiver.name if receiver is not None else "",
    )


def _check_pin(
    caller: Person,
    pin_hash: str,
    call: CallInput,
    request_id: str,
    now: datetime,
    guard: AttemptGuard | None,
) -> CallAnswer | str:
    """The call's PIN proof when the PIN is (or was, earlier in this call) right; otherwise
    what to say: ask for it, ask again, locked, goodbye. The PIN is never logged."""
    if check_proof(call.pin_proof, pin_hash, contact_id=request_id, phone=caller.phone):
        return call.pin_proof
    if call.asked != "pin":
        return _say(caller, "prompt_pin", "pin_asked", step="pin")
    if guard is None:
        raise RuntimeError("a PIN-protected directory entry needs ATTEMPTS_TABLE_NAME")
    key = f"hotline#{caller.phone}"  # its own counter: a mistyped campaign code is no attack
    if guard.locked_until(key, now) is not None:
        return _say(caller, "prompt_locked", "pin_locked")  # a locked attempt, not a guess
    if verify_pin(call.pin, pin_hash):
        return pin_proof(pin_hash, contact_id=request_id, phone=caller.phone)
    if is_pin_shaped(call.pin):  # a timeout or a short entry costs a try, not a lockout count
        failure = guard.record_failure(
            key, now, window=FAILURE_WINDOW, limit=MAX_WRONG_PINS, lockout=LOCKOUT
        )
        if failure.locked_now:
            return _say(caller, "prompt_locked", "pin_lockout")  # this wrong PIN locked it
    wrong_pins = call.wrong_pins + 1
    if wrong_pins >= MAX_PIN_TRIES:
        return _say(caller, "prompt_goodbye", "pin_wrong")
    return _say(caller, "prompt_pin_again", "pin_wrong", step="pin", wrong_answers=wrong_pins)


def _choose(caller: Person, circle: Circle, call: CallInput, proof: str) -> Person | CallAnswer:
    others = circle.others(caller.phone)
    if len(others) == 1:
        return others[0]  # two people: no menu
    names = messages.menu([p.spoken_name for p in others], caller.lang)
    if call.asked != "choice":
        return _say(caller, "prompt_choose", "menu", step="choose", menu=names, proof=proof)
    digit = call.choice
    if digit in _MENU_DIGITS[: len(others)]:
        return others[int(digit) - 1]
    wrong_choices = call.wrong_choices + 1
    if wrong_choices >= MAX_CHOICE_TRIES:
        return _say(caller, "prompt_goodbye", "no_choice")
    return _say(
        caller,
        "prompt_choose_again",
        "menu",
        step="choose",
        menu=names,
        wrong_answers=wrong_choices,
        proof=proof,
    )


def _ask(
    *,
    caller: Person,
    receiver: Person,
    hotline_number: str,
    request_id: str,
    now: datetime,
    answer_window: timedelta,
    link_base_url: str,
    store: RequestStore,
    bus: EventPublisher,
) -> CallAnswer:
    quiet_until = receiver.quiet_hours.ends_at(now) if receiver.quiet_hours else None
    if quiet_until is not None:
        # A request of the caller's that went out before the quiet hours began is still
        # waiting for its answer: say that, as any repeat hears.
        mine = store.newest_request(caller.phone, receiver.phone)
        if mine is not None and _still_open(mine, now):
            return _say(caller, "prompt_waiting", "repeat", receiver=receiver)
        # Someone who asked for the caller a minute ago is awake, whatever their hours say.
        theirs = store.newest_request(receiver.phone, caller.phone)
        if theirs is not None and theirs.waiting(now):
            matched = _match(caller, receiver, theirs, store, bus, now)
            if matched is not None:
                return matched
        until = spoken_time(quiet_until.astimezone(zone(caller.timezone)), caller.lang)
        return _say(caller, "prompt_quiet", "quiet", receiver=receiver, until=until)
    answer = _say(caller, "prompt_asking", "asked", receiver=receiver)
    link = new_link(now)
    request = CallRequest(
        request_id=request_id,
        caller=Party.of(caller),
        receiver=Party.of(receiver),
        hotline_number=hotline_number,
        requested_at=now,
        answer_by=now + answer_window,
    )
    settled: set[str] = set()
    for _ in range(3):  # each round learns of one more settled request; 3 is plenty
        creation = store.create(request, link, settled=settled)
        if creation.outcome is CreateOutcome.CREATED:
            break
        if creation.outcome is CreateOutcome.ALREADY_CREATED:
            # Connect invoked us again for the same contact: the request and its event exist.
            return answer
        blocking = [rid for rid in (creation.mine, creation.theirs) if rid]
        found = store.get_many(blocking)
        mine = found.get(creation.mine or "")
        if mine is not None and _still_open(mine, now):
            return _say(caller, "prompt_waiting", "repeat", receiver=receiver)
        theirs = found.get(creation.theirs or "")
        if theirs is not None and theirs.waiting(now):
            matched = _match(caller, receiver, theirs, store, bus, now)
            if matched is not None:
                return matched
        settled.update(blocking)
    else:
        raise RuntimeError("the pair items kept changing under concurrent calls")
    event = CallRequested(
        request_id=request_id,
        caller=request.caller,
        receiver=request.receiver,
        hotline_number=hotline_number,
        requested_at=now,
        answer_by=request.answer_by,
        link=link_url(link_base_url, link.token),
    )
    try:
        bus.publish(event, correlation_id=request_id)
    except PublishFailed as failed:
        # Without CallRequested nobody would be invited and no timer would run: undo the
        # request so the flow's error branch tells the caller at once to try again. Unless
        # the event may be on the bus after all: then its link and its timer must find the
        # request (if it is not, nobody ever sees the request, and TTL removes it).
        if not failed.maybe_published:
            store.discard(request, link)
        raise
    except Exception:
        store.discard(request, link)
        raise
    return replace(answer, created=True)


def _still_open(mine: CallRequest, now: datetime) -> bool:
    """Whether the caller's earlier request to the same person still stands, so this call
    is a repeat and creates nothing: until it is settled, also after its window while its
    time-out is on its way (Scheduler's minute, Lambda's retries). A request overdue past
    all of that lost its timer to a dead letter (re-driving it ends the request): it no
    longer keeps its caller from asking again. The store's pair item stands just as long."""
    return not mine.settled and not mine.overdue(now)


def _match(
    caller: Person,
    receiver: Person,
    theirs: CallRequest,
    store: RequestStore,
    bus: EventPublisher,
    now: datetime,
) -> CallAnswer | None:
    """The caller is the receiver of `theirs` (whose caller is `receiver`), which is waiting:
    settle it as a mutual accept. None when it got answered meanwhile (then this call is an
    ordinary one)."""
    transition = store.step(
        Step.MATCH, now, request_id=theirs.request_id, link_hash=theirs.link_hash
    )
    current = transition.request
    if current is None or not (transition.applied or current.mutual):
        return None
    # A repeat of the match (Connect retrying) announces again; consumers are idempotent.
    announce(current, bus)
    return _say(caller, "prompt_mutual", "mutual", receiver=receiver)
