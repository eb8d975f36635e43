"""AWS API calls per conversation and Lambda invocations per call, counted at the botocore
level (`hotline_tools.local.api_calls`) while the local runtime (`LocalHotline`, the template
in moto, the real handlers) plays each conversation."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from typing import Any

from benchmarks.common import DEFAULT_BASE, FAKE_AWS, MIZUKI, ROOT, TAKUMI, ok, table
from hotline_core.requests import OVERDUE_AFTER
from hotline_tools.local.api_calls import ApiCallCounter

FORM = {"content-type": "application/x-www-form-urlencoded"}
# 12, plus the one read InviteReceiver makes once it has claimed the invitation: a delivery
# that arrives late, twice or out of order invites nobody to a settled or closed request.
# And one conditional read of the directory (a 304 when unchanged) when the container's copy
# is older than a minute: at a family's few calls a day, nearly every call makes it.
# With LINE on (the local runtime's default, and any stack with LineSecretName), one read of
# the LINE links table more per message, the invitation and the caller's outcome: is this
# person linked? (2 more; a linked person's push is HTTPS to LINE, not an AWS call.)
LINE_LOOKUPS = 2
TARGET_ACCEPTED = 14 + LINE_LOOKUPS
# The time-out costs the caller's text two reads and a write more than an answer's: TellCaller
# reads the request (pointer, then item) once it has claimed "can't talk", and marks the claim
# ended, so a late "free now" never goes before it, nor waits for it longer than needed.
TARGET_TIMED_OUT = 15 + LINE_LOOKUPS

ORIGINAL = {
    "accepted": [
        ("contact flow Lambda", "S3 GetObject", "read the directory (every call)"),
        ("contact flow Lambda", "DynamoDB PutItem", "store the request"),
        ("contact flow Lambda", "SQS SendMessage", "the timer: a delayed message"),
        ("contact flow Lambda", "SNS Publish", "text the receiver the link"),
        ("accept Lambda", "DynamoDB GetItem", "read the request on the tap"),
        ("accept Lambda", "DynamoDB UpdateItem", "mark it accepted"),
        ("accept Lambda", "SNS Publish", "text the caller"),
        ("timer Lambda", "DynamoDB GetItem", "the delayed message arrives: already answered"),
    ],
    "timed out": [
        ("contact flow Lambda", "S3 GetObject", "read the directory (every call)"),
        ("contact flow Lambda", "DynamoDB PutItem", "store the request"),
        ("contact flow Lambda", "SQS SendMessage", "the timer: a delayed message"),
        ("contact flow Lambda", "SNS Publish", "text the receiver the link"),
        ("timer Lambda", "DynamoDB GetItem", "the delayed message arrives: read the request"),
        ("timer Lambda", "DynamoDB UpdateItem", "mark it timed out"),
        ("timer Lambda", "SNS Publish", "text the caller"),
    ],
}


def _link_path(body: str) -> str:
    url = re.search(r"https?://\S+", body)
    assert url, f"no link in {body!r}"
    return "/" + url.group(0).split("/", 3)[3]


def play(engine: Any, counter: ApiCallCounter, kind: str, *, open_page: bool = True) -> dict:
    """One conversation: Takumi calls; Mizuki opens the link and says yes, or no, or nothing
    for longer than the answer window."""
    counter.calls.clear()
    with counter.during("call"):
        answer = engine.call(TAKUMI)
    invite = engine.sms(MIZUKI)[-1]["body"]
    path = _link_path(invite)
    if kind in ("accepted", "declined"):
        if open_page:
            with counter.during("GET the page"):
                engine.http("GET", path)
        word = "yes" if kind == "accepted" else "no"
        with counter.during(f"POST answer={word}"):
            engine.http("POST", path, body=f"answer={word}".encode(), headers=FORM)
    with counter.during("answer window passes"):
        # The window, rounded up to the minute, and Scheduler's minute of precision.
        engine.advance(int(engine.template.parameters.get("AnswerWindowSeconds", 120)) + 120)
    told = engine.sms(TAKUMI)[-1]["body"]
    # The next conversation is a new one, not a repeat soon after this one (which costs a
    # failed create and a read of this request: see README, "Repeats").
    engine.advance(int(OVERDUE_AFTER.total_seconds()) + 60)
    return {
        "kind": kind,
        "lambda_invocations": answer["lambda_invocations"],
        "calls": list(counter.calls),
        "invite": invite,
        "told": told,
    }


def start_engine(counter: ApiCallCounter) -> Any:
    counter.install()
    from hotline_tools.local.engine import LocalHotline

    engine = LocalHotline(base_url=DEFAULT_BASE).start()
    counter.names = {fn.arn.rsplit(":", 1)[1]: lid for lid, fn in engine.stack.functions.items()}
    return engine


# Calls that take the contact flow past its first Lambda: a menu (three people or more) and
# the hotline PIN, each on its own line so that no call waits on another's open request;
# and the benefits line. (key, label, members' PIN flags, digits typed, who must be asked)
FLOW_PIN = "2468"
FLOW_CASES = (
    ("menu", "circle of three: the menu, the right digit", (False, False, False), "2", 2),
    (
        "menu_retry",
        "circle of three: a wrong digit, then the right one",
        (False, False, False),
        "71",
        1,
    ),
    ("pin", "two people, a hotline PIN", (True, False), f"{FLOW_PIN}#", 1),
    ("pin_retry", "a wrong PIN, then the right one", (True, False), f"1111#{FLOW_PIN}#", 1),
    (
        "pin_menu",
        "circle of three with a PIN: PIN, then the menu",
        (True, False, False),
        f"{FLOW_PIN}#1",
        1,
    ),
)
BENEFITS_MEMBER, BENEFITS_PIN = "+819000000901", "246810"


def _flow_directory(pin_hash: str) -> bytes:
    circles = [
        {
            "number": f"+81500000{i:04d}",
            "members": [
                {
                    "name": f"メンバー{j}",
                    "phone": f"+81900{i:04d}{j:03d}",
                    **({"pin_hash": pin_hash} if pinned else {}),
                }
                for j, pinned in enumerate(pins)
            ],
        }
        for i, (_, _, pins, _, _) in enumerate(FLOW_CASES, start=1)
    ]
    return json.dumps({"circles": circles}, ensure_ascii=False).encode()


def flow_invocations(engine: Any) -> dict[str, Any]:
    """Lambda invocations the hotline contact flow makes per call (Connect bills each, and
    each is latency the caller hears): a two-person circle's call and an unknown caller's."""
    registered = engine.call(TAKUMI)["lambda_invocations"]
    unknown = engine.call("+819099998888")["lambda_invocations"]
    return {
        "registered": registered,
        "unregistered": unknown,
        "original": 2,
        "target_met": registered <= 1 and unknown <= 1,
    }


def flow_paths() -> list[dict[str, Any]]:
    """The same for every menu and PIN path and the benefits line, on a local runtime of its
    own (one per process at a time: call it when no other runtime is running)."""
    from hotline_core.pins import hash_pin
    from hotline_tools.local.engine import LocalHotline

    cases = []
    engine = LocalHotline(
        base_url=DEFAULT_BASE,
        directory=_flow_directory(hash_pin(FLOW_PIN)),
        members=json.dumps([{"phone": BENEFITS_MEMBER, "member_id": "M1"}]).encode(),
        benefits=f"pin,campaign_url\n{BENEFITS_PIN},https://example.com/c\n".encode(),
    ).start()
    try:
        for i, (key, label, _, digits, asked) in enumerate(FLOW_CASES, start=1):
            caller, receiver = f"+81900{i:04d}000", f"+81900{i:04d}{asked:03d}"
            got = engine.call(caller, to=f"+81500000{i:04d}", digits=digits)
            # Only a call that really asked counts: the receiver it chose got the link.
            done = any("/a/" in m["body"] for m in engine.sms(receiver))
            cases.append(
                {"key": key, "call": label, "invocations": got["lambda_invocations"], "ok": done}
            )
        for key, label, digits in (
            ("benefits", "benefits line: the right PIN", f"{BENEFITS_PIN}#"),
            (
                "benefits_retry",
                "benefits line: a wrong PIN, then the right one",
                f"1111#{BENEFITS_PIN}#",
            ),
        ):
            before = len(engine.sms(BENEFITS_MEMBER))
            got = engine.call(BENEFITS_MEMBER, line="benefits", digits=digits)
            done = len(engine.sms(BENEFITS_MEMBER)) == before + 1
            cases.append(
                {"key": key, "call": label, "invocations": got["lambda_invocations"], "ok": done}
            )
    finally:
        engine.stop()
    return cases


def original_played() -> dict[str, dict[str, Any]]:
    """The original design's counts, measured: its own `play.py 1` (one accepted and one
    timed-out conversation through its four functions under moto), run from its folder."""
    folder = ROOT.parent / "shared" / "reference" / "original" / "hotline"
    out = subprocess.run(
        [sys.executable, "play.py", "1"],
        cwd=folder,
        env=dict(os.environ, **FAKE_AWS),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    got = json.loads(out.stdout[out.stdout.index("{") :])
    return {"accepted": got["accepted"], "timed out": got["timedout"]}


def measure(engine: Any | None = None, counter: ApiCallCounter | None = None) -> dict[str, Any]:
    counter = counter or ApiCallCounter()
    own = engine is None
    engine = engine or start_engine(counter)
    try:
        kinds = ("accepted", "timed out", "declined")
        cold = {k: play(engine, counter, k) for k in kinds}  # warm-up: every function loaded
        warm = {k: play(engine, counter, k) for k in kinds}
        no_page = play(engine, counter, "accepted", open_page=False)
        flow = flow_invocations(engine)
    finally:
        if own:
            engine.stop()
    if own:
        flow["other"] = flow_paths()
    cold_only: Counter[tuple[str, str, str]] = Counter()
    for k in kinds:
        signature = Counter((c["function"], c["call"], c["why"]) for c in cold[k]["calls"])
        signature.subtract(Counter((c["function"], c["call"], c["why"]) for c in warm[k]["calls"]))
        cold_only |= +signature
    accepted = len(warm["accepted"]["calls"])
    original = original_played()
    return {
        "warm": warm,
        "cold_only": sorted(cold_only),
        "accepted_without_page": len(no_page["calls"]),
        "counts": {k: len(v["calls"]) for k, v in warm.items()},
        "original_counts": {k: v["api_calls"] for k, v in original.items()},
        "original_calls": {k: v["calls"] for k, v in original.items()},
        "original_model_counts": {k: len(v) for k, v in ORIGINAL.items()},
        "flow": flow,
        "target_met": accepted <= TARGET_ACCEPTED,
        "live_bodies": {"invite": warm["accepted"]["invite"], "told": warm["accepted"]["told"]},
    }


def render_flow(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            "## 2. Lambda invocations in the contact flow per call",
            "",
            "`lambda_invocations` reported by the local runtime's contact-flow interpreter "
            "running the flows the template deploys (`contact_flow/hotline.json`, "
            "`contact_flow/benefits.json`) for one call. The target is for the common call: "
            "a two-person circle, no PIN.",
            "",
            table(
                ["call", "Hotline", "original design", "target", "met"],
                [
                    [
                        "two-person circle, no PIN",
                        f["registered"],
                        f["original"],
                        1,
                        ok(f["registered"] <= 1),
                    ],
                    ["unregistered caller", f["unregistered"], "—", 1, ok(f["unregistered"] <= 1)],
                ],
            ),
            "",
            "Beyond that: one invocation recognises the caller, and each PIN or menu choice "
            "the caller types is one more (the flow hands the digits to "
            "`CallRequestFunction`, or on the benefits line `BenefitRequestFunction`, to "
            "check); a wrong entry and its retry cost one each:",
            "",
            table(
                ["call", "invocations", "the call got through"],
                [
                    [c["call"], c["invocations"], "yes" if c["ok"] else "**no**"]
                    for c in f.get("other", [])
                ],
            ),
            "",
        ]
    )


SPENT = [
    (
        "the choreography",
        "a `PutEvents` per state change, one consumer per side effect; the price of "
        "independent, replayable consumers",
    ),
    (
        "once-only side effects",
        "one conditional `PutItem` claim per SMS and per timer start (not claim + complete: "
        "a crash between the claim and the send loses that text rather than sending it twice)",
    ),
    ("the timer's cancel", "`DeleteSchedule` on an answer, so the timer never fires for nothing"),
]
SAVED = [
    (
        "the request is keyed by its link",
        "the page is one `GetItem`, the answer one conditional `UpdateItem` that returns the "
        "request (`ALL_NEW`); `REQ#<contact id>` only points at it",
    ),
    (
        "the directory",
        "kept a minute, then a conditional read (a 304 when unchanged), not a read and a parse "
        "on every call",
    ),
    ("the contact flow", "one Lambda invocation per call, not two"),
]


def render(r: dict[str, Any]) -> str:
    counts, orig = r["counts"], r["original_counts"]
    out = [
        "## 3. AWS API calls per conversation",
        "",
        "Counted at the botocore level (a `before-parameter-build` handler in botocore's "
        "built-in handlers, so every client reports every operation) while the local runtime "
        "plays the conversation with the real handlers against moto; the original design's "
        "figures are measured by running its own `play.py` (`../shared/reference/original/`, "
        "its four functions under moto), in the same run. Only calls made inside "
        "a handler invocation count (the runtime's own queue/schedule bookkeeping does not). "
        "Each conversation is played on a warm runtime, after one warm-up conversation of "
        "the same kind; the accepted and declined conversations include opening the page "
        "(GET) before answering (POST).",
        "",
        table(
            ["conversation", "Hotline", "original design", "target", "met"],
            [
                [
                    "accepted",
                    counts["accepted"],
                    orig["accepted"],
                    f"≤ {TARGET_ACCEPTED}",
                    ok(r["target_met"]),
                ],
                [
                    "accepted, answered without opening the page",
                    r["accepted_without_page"],
                    orig["accepted"],
                    "—",
                    "",
                ],
                ["timed out", counts["timed out"], orig["timed out"], "—", ""],
                ["declined", counts["declined"], "—", "—", ""],
            ],
        ),
        "",
        "**Once per cold start** (not in the figures above): "
        + ("; ".join(f"{f}: {c} — {w}" for f, c, w in r["cold_only"]) if r["cold_only"] else "none")
        + ". The original read the directory from S3 on every call.",
        "",
    ]
    for kind in ("accepted", "timed out", "declined"):
        rows = [
            [i, c["phase"], c["function"], c["call"], c["why"]]
            for i, c in enumerate(r["warm"][kind]["calls"], 1)
        ]
        out += [f"**{kind}** ({len(rows)} calls)", ""]
        out += [table(["#", "step", "function", "call", "why"], rows), ""]
    for kind, calls in ORIGINAL.items():
        played = r.get("original_calls", {}).get(kind, {})
        out += [
            f"**The original design, {kind}** ({len(calls)} calls, listed from its code; "
            f"measured: {orig[kind]}, by running its own `play.py 1` under moto: "
            + ", ".join(f"{op} ×{n}" for op, n in played.items())
            + ")",
            "",
        ]
        out += [
            table(
                ["#", "function", "call", "why"],
                [[i, *c] for i, c in enumerate(calls, 1)],
            ),
            "",
        ]
    over = counts["accepted"] - TARGET_ACCEPTED
    verdict = (
        f"**Over target by {over}** for an accepted conversation"
        if over > 0
        else "Within target for an accepted conversation"
    )
    out += [
        f"{verdict}. Where the calls go, compared with the original design:",
        "",
        table(["spent on", "why"], [[w, h] for w, h in SPENT]),
        "",
        "What keeps the count down:",
        "",
        table(["saved by", "how"], [[w, h] for w, h in SAVED]),
        "",
    ]
    return "\n".join(out)
