"""SMS segments per conversation, counted with the real GSM-7 / UCS-2 segmentation
(`hotline_tools.segments.sms_segments`) on the real message texts and a real link token, and
how long a name may be before a text needs one more segment."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from benchmarks.common import DEFAULT_BASE, MIZUKI, ROOT, SHORT_BASE, TAKUMI, ok, table
from hotline_tools.segments import INVITATION_PROMISE, is_default_link

NAMES = {"ja": ("タクミ", "ミズキ"), "en": ("Takumi", "Mizuki")}
# A name of n characters for the headroom figures: one BMP character = one UCS-2 unit.
NAME_CHAR = {"ja": "ア", "en": "a"}
BASES = {"default execute-api link": DEFAULT_BASE, f"short domain ({SHORT_BASE})": SHORT_BASE}
# Which texts each conversation sends: the receiver's invitation, then the texts to the
# people who called (in a mutual match both called: each gets the other's number).
CONVERSATIONS = {
    "accepted": ["invite", "accepted"],
    "declined": ["invite", "declined"],
    "timed out": ["invite", "timed_out"],
    "timed out, then a late yes": ["invite", "timed_out", "accepted_late"],
    "both called (mutual match)": ["invite", "mutual_first", "mutual_second"],
}
# Every text that goes to someone who called a line (hotline_core.messages): the hotline's
# outcomes and mutual-match texts, and the benefits line's campaign link.
CALLER_TEXTS = (
    "accepted",
    "declined",
    "timed_out",
    "accepted_late",
    "mutual_first",
    "mutual_second",
    "benefit",
)

# The original design: ~40 characters of Japanese plus a 113-character link. Its caller
# texts are not in the issue: we assume they were short Japanese texts like ours (1 segment).
ORIGINAL_LINK = (
    "https://a1b2c3d4e5.execute-api.ap-northeast-1.amazonaws.com/accept?contactid="
    "0f8b2c1e-4d5a-4b6c-9e7f-123456789abc"
)
ORIGINAL_INVITE_JA = (
    "タクミさんから電話のお願いがあります。話せるなら下のリンクを押してください：\n\n"
)
ORIGINAL_INVITE_EN = "Takumi wants to call you. Tap if you can: "


def benefit_url() -> str:
    """The longest campaign URL in the example benefits file (the benefits line texts it)."""
    with (ROOT / "examples" / "benefits.csv").open(encoding="utf-8") as f:
        return max((row["campaign_url"] for row in csv.DictReader(f)), key=len)


def _renderers(lang: str, base: str, token: str) -> dict[str, Callable[[str], str]]:
    """Each text as a function of the one name in it that a directory entry sets."""
    from hotline_core.messages import text

    link = f"{base}/a/{token}"

    def t(key: str, **values: str) -> str:
        return text(key, lang, **values)  # type: ignore[arg-type]

    return {
        "invite": lambda name: t("invite", caller=name, link=link),
        "accepted": lambda name: t("accepted", receiver=name, phone=MIZUKI),
        "declined": lambda name: t("declined", receiver=name),
        "timed_out": lambda name: t("timed_out", receiver=name),
        "accepted_late": lambda name: t("accepted_late", receiver=name, phone=MIZUKI),
        # To the first caller (Takumi) about Mizuki, and to Mizuki about Takumi.
        "mutual_first": lambda name: t("mutual_first", other=name, phone=MIZUKI),
        "mutual_second": lambda name: t("mutual_second", other=name, phone=TAKUMI),
    }


def _bodies(lang: str, base: str, token: str) -> dict[str, str]:
    caller, receiver = NAMES[lang]
    named = {"invite": caller, "mutual_second": caller}
    return {
        key: render(named.get(key, receiver))
        for key, render in _renderers(lang, base, token).items()
    }


def longest_name(render: Callable[[str], str], char: str, segments: int) -> int:
    """The longest name (in `char`s) for which `render(name)` still fits `segments`."""
    from hotline_tools.segments import sms_segments

    n = 0
    while n < 500 and sms_segments(render(char * (n + 1))) <= segments:
        n += 1
    return n


def _text_row(lang: str, link: str, key: str, body: str) -> dict[str, Any]:
    from hotline_tools.segments import sms_encoding, sms_segments, sms_units

    return {
        "lang": lang,
        "link": link,
        "text": key,
        "encoding": sms_encoding(body),
        "units": sms_units(body),
        "segments": sms_segments(body),
        "body": body,
    }


def measure() -> dict[str, Any]:
    from hotline_core.messages import text
    from hotline_core.requests import new_link
    from hotline_tools.segments import sms_segments

    token = new_link(datetime.now(UTC)).token
    texts: list[dict[str, Any]] = []
    conversations: list[dict[str, Any]] = []
    headroom: list[dict[str, Any]] = []
    for lang in ("ja", "en"):
        for base_name, base in BASES.items():
            bodies = _bodies(lang, base, token)
            rows = {key: _text_row(lang, base_name, key, body) for key, body in bodies.items()}
            texts += rows.values()
            for name, keys in CONVERSATIONS.items():
                conversations.append(
                    {
                        "lang": lang,
                        "link": base_name,
                        "conversation": name,
                        "segments": sum(rows[k]["segments"] for k in keys),
                    }
                )
            renderers = _renderers(lang, base, token)
            # The targets, as the README promises them (and directory check warns).
            target = INVITATION_PROMISE[lang, not is_default_link(base)]
            headroom.append(
                {
                    "lang": lang,
                    "link": base_name,
                    "target": target,
                    "invite": longest_name(renderers["invite"], NAME_CHAR[lang], target),
                    # Every text to a caller names the other person; the tightest decides.
                    "caller_texts": min(
                        longest_name(render, NAME_CHAR[lang], 1)
                        for key, render in renderers.items()
                        if key != "invite"
                    ),
                }
            )
    url = benefit_url()
    benefit = text("benefit", "ja", url=url)  # the benefits line texts in Japanese
    texts.append(_text_row("ja", "benefits line", "benefit", benefit))
    benefit_url_max = longest_name(lambda u: text("benefit", "ja", url=u), "a", 1)

    original = {}
    for lang, invite in (("ja", ORIGINAL_INVITE_JA), ("en", ORIGINAL_INVITE_EN)):
        body = invite + ORIGINAL_LINK
        original[lang] = {
            "invite_chars": len(body),
            "invite_segments": sms_segments(body),
            "caller_segments": 1,  # assumption, see ORIGINAL_INVITE_JA's comment
        }
    ja_default = _find(texts, "ja", DEFAULT_BASE, "invite")
    ja_short = _find(texts, "ja", SHORT_BASE, "invite")
    caller_max = max(t["segments"] for t in texts if t["text"] in CALLER_TEXTS)
    targets = {
        "ja_invite_default_le_2": ja_default["segments"] <= 2,
        "ja_invite_short_eq_1": ja_short["segments"] == 1,
        "caller_texts_eq_1": caller_max == 1,
    }
    ja_headroom = {h["link"]: h for h in headroom if h["lang"] == "ja"}
    return {
        "token_chars": len(token),
        "original_link_chars": len(ORIGINAL_LINK),
        "texts": texts,
        "conversations": conversations,
        "headroom": headroom,
        "benefit_url": url,
        "benefit_url_max": benefit_url_max,
        "original": original,
        "headline": {
            "ja_invite_default": ja_default["segments"],
            "ja_invite_short": ja_short["segments"],
            "caller_max": caller_max,
            "original_ja_invite": original["ja"]["invite_segments"],
            "ja_name_max_short": ja_headroom[_base_name(SHORT_BASE)]["invite"],
            "ja_name_max_default": ja_headroom[_base_name(DEFAULT_BASE)]["invite"],
        },
        "targets": targets,
    }


def _base_name(base: str) -> str:
    return next(n for n, b in BASES.items() if b == base)


def _find(texts: list[dict[str, Any]], lang: str, base: str, key: str) -> dict[str, Any]:
    name = _base_name(base)
    return next(t for t in texts if t["lang"] == lang and t["link"] == name and t["text"] == key)


def _units(t: dict[str, Any]) -> str:
    return f"{t['units']} {'septets' if t['encoding'] == 'GSM-7' else 'units'} ({t['encoding']})"


def render(r: dict[str, Any]) -> str:
    h = r["headline"]
    t = r["targets"]
    out = [
        "## 1. SMS segments per conversation",
        "",
        "Counted by `hotline_tools.segments.sms_segments`, which splits a message as the "
        "network does: GSM-7 when every character is in the GSM-7 alphabet (160 septets in "
        "one SMS; 153 per part once split; an extension-table character such as `€` or `[` is "
        "an escape plus the character, two septets), otherwise UCS-2 for the whole message "
        "(70 UTF-16 units; 67 per part; a character outside the BMP, an emoji say, is a "
        "surrogate pair, two units). Each part is filled as far as it goes without splitting "
        "an escape from its character or a surrogate pair, so a split message can take one "
        "segment more than its units ÷ 153 or 67. Counted on the bodies "
        "`hotline_core.messages.text` produces, with a real "
        f"{r['token_chars']}-character link token from `hotline_core.requests.new_link`, the "
        "directory's names (タクミ / ミズキ; Takumi / Mizuki in English) and 13-character "
        "phone numbers. Default link: `" + DEFAULT_BASE + "/a/<token>` "
        f"({len(DEFAULT_BASE) + 3 + r['token_chars']} characters); short domain: "
        f"`{SHORT_BASE}/a/<token>` ({len(SHORT_BASE) + 3 + r['token_chars']} characters).",
        "",
        "**Targets**",
        "",
        table(
            ["target", "Hotline", "original design", "met"],
            [
                [
                    "Japanese invitation, default link: ≤ 2 segments",
                    h["ja_invite_default"],
                    h["original_ja_invite"],
                    ok(t["ja_invite_default_le_2"]),
                ],
                [
                    "Japanese invitation, short domain: 1 segment",
                    h["ja_invite_short"],
                    "(no custom domain)",
                    ok(t["ja_invite_short_eq_1"]),
                ],
                [
                    "every text to a caller: 1 segment",
                    h["caller_max"],
                    "1 (assumed)",
                    ok(t["caller_texts_eq_1"]),
                ],
            ],
        ),
        "",
        "**How long a name may be.** The invitation carries the caller's name, every other "
        "text the other person's, so the targets hold only up to a name length. Longest "
        "name, in characters of the BMP (one UCS-2 unit or GSM-7 septet each; an emoji "
        "counts two), for which the text still fits its target:",
        "",
        table(
            [
                "lang",
                "link",
                "invitation target",
                "longest caller name for it",
                "longest name keeping every text to a caller in 1 segment",
            ],
            [
                [
                    x["lang"],
                    x["link"],
                    f"{x['target']} segment{'s' if x['target'] > 1 else ''}",
                    x["invite"],
                    x["caller_texts"],
                ]
                for x in r["headroom"]
            ],
        ),
        "",
        f"So the Japanese invitation fits **1 segment with a short domain only for a caller "
        f"name of at most {h['ja_name_max_short']} characters** (タクミ is 3; one of "
        f"{h['ja_name_max_short'] + 1} makes it 2), and 2 segments with the default link for a "
        "name of up to "
        f"{h['ja_name_max_default']}. A Japanese name in an English text makes the whole text "
        "UCS-2, so the English figures hold for names in the Latin alphabet only.",
        "",
        "**Segments per conversation** (the receiver's invitation + every text to the people "
        "who called)",
        "",
    ]
    rows = []
    orig = r["original"]
    for c in r["conversations"]:
        original = "—"
        if c["link"].startswith("default") and c["conversation"] in ("accepted", "timed out"):
            o = orig[c["lang"]]
            original = str(o["invite_segments"] + o["caller_segments"])
        rows.append([c["lang"], c["link"], c["conversation"], c["segments"], original])
    out.append(table(["lang", "link", "conversation", "Hotline", "original design"], rows))
    out += ["", "**Each text**", ""]
    out.append(
        table(
            ["lang", "link", "text", "size", "segments", "body"],
            [
                [t["lang"], t["link"], t["text"], _units(t), t["segments"], f"`{t['body']}`"]
                for t in r["texts"]
            ],
        )
    )
    out += [
        "",
        "The benefits line's text is always Japanese; its size is the campaign URL's: "
        f"`{r['benefit_url']}` is the longest in `examples/benefits.csv`, and a URL of up to "
        f"{r['benefit_url_max']} characters keeps it in 1 segment.",
        "",
        "**The original design** (from the issue): a Japanese invitation of about 40 "
        f"characters plus the {r['original_link_chars']}-character link "
        "`https://<10>.execute-api.ap-northeast-1.amazonaws.com/accept?contactid=<36>`. We "
        f"model it as a {len(ORIGINAL_INVITE_JA)}-character Japanese text + that link: "
        f"{orig['ja']['invite_chars']} UCS-2 units → **{orig['ja']['invite_segments']} "
        "segments**. Assumption: the original's texts to the caller were short Japanese "
        "texts like Hotline's, 1 segment each (the issue does not quote them). The English "
        f"column models a {len(ORIGINAL_INVITE_EN)}-character English text + the same link "
        f"({orig['en']['invite_chars']} GSM-7 septets → {orig['en']['invite_segments']} "
        "segment); the original was Japanese-only as far as the issue says.",
        "",
    ]
    return "\n".join(out)
