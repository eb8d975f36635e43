"""SMS segments per conversation, counted with the real GSM-7 / UCS-2 rules
(`hotline_core.messages.sms_segments`) on the real message texts and a real link token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from benchmarks.common import DEFAULT_BASE, MIZUKI, SHORT_BASE, ok, table

NAMES = {"ja": ("タクミ", "ミズキ"), "en": ("Takumi", "Mizuki")}
BASES = {"default execute-api link": DEFAULT_BASE, f"short domain ({SHORT_BASE})": SHORT_BASE}
# Which texts each conversation sends: the receiver's invitation, then the caller's texts.
CONVERSATIONS = {
    "accepted": ["invite", "accepted"],
    "declined": ["invite", "declined"],
    "timed out": ["invite", "timed_out"],
    "timed out, then a late yes": ["invite", "timed_out", "accepted_late"],
}
CALLER_TEXTS = ("accepted", "declined", "timed_out", "accepted_late")

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


def _bodies(lang: str, base: str, token: str) -> dict[str, str]:
    from hotline_core import messages

    caller, receiver = NAMES[lang]
    link = f"{base}/a/{token}"
    return {
        "invite": messages.text("invite", lang, caller=caller, link=link),  # type: ignore[arg-type]
        **{
            key: messages.text(key, lang, receiver=receiver, phone=MIZUKI)  # type: ignore[arg-type]
            for key in CALLER_TEXTS
        },
    }


def measure() -> dict[str, Any]:
    from hotline_core.messages import sms_segments
    from hotline_core.requests import new_link

    token = new_link(datetime.now(UTC)).token
    texts: list[dict[str, Any]] = []
    conversations: list[dict[str, Any]] = []
    for lang in ("ja", "en"):
        for base_name, base in BASES.items():
            bodies = _bodies(lang, base, token)
            segs = {key: sms_segments(body) for key, body in bodies.items()}
            for key, body in bodies.items():
                texts.append(
                    {
                        "lang": lang,
                        "link": base_name,
                        "text": key,
                        "chars": len(body),
                        "segments": segs[key],
                        "body": body,
                    }
                )
            for name, keys in CONVERSATIONS.items():
                conversations.append(
                    {
                        "lang": lang,
                        "link": base_name,
                        "conversation": name,
                        "segments": sum(segs[k] for k in keys),
                    }
                )
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
    return {
        "token_chars": len(token),
        "original_link_chars": len(ORIGINAL_LINK),
        "texts": texts,
        "conversations": conversations,
        "original": original,
        "headline": {
            "ja_invite_default": ja_default["segments"],
            "ja_invite_short": ja_short["segments"],
            "caller_max": caller_max,
            "original_ja_invite": original["ja"]["invite_segments"],
        },
        "targets": targets,
    }


def _find(texts: list[dict[str, Any]], lang: str, base: str, key: str) -> dict[str, Any]:
    name = next(n for n, b in BASES.items() if b == base)
    return next(t for t in texts if t["lang"] == lang and t["link"] == name and t["text"] == key)


def render(r: dict[str, Any]) -> str:
    h = r["headline"]
    t = r["targets"]
    out = [
        "## 1. SMS segments per conversation",
        "",
        "Counted by `hotline_core.messages.sms_segments` (GSM-7: 160 septets, 153 per part "
        "when split, extended characters count two; anything else UCS-2: 70 UTF-16 units, 67 "
        "per part) on the bodies `hotline_core.messages.text` produces, with a real "
        f"{r['token_chars']}-character link token from `hotline_core.requests.new_link`, the "
        "directory's names (タクミ / ミズキ; Takumi / Mizuki in English) and a 13-character "
        "phone number. Default link: `" + DEFAULT_BASE + "/a/<token>` "
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
                    "every text to the caller: 1 segment",
                    h["caller_max"],
                    "1 (assumed)",
                    ok(t["caller_texts_eq_1"]),
                ],
            ],
        ),
        "",
        "**Segments per conversation** (the receiver's invitation + every text to the caller)",
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
            ["lang", "link", "text", "characters", "segments", "body"],
            [
                [t["lang"], t["link"], t["text"], t["chars"], t["segments"], f"`{t['body']}`"]
                for t in r["texts"]
            ],
        )
    )
    out += [
        "",
        "**The original design** (from the issue): a Japanese invitation of about 40 "
        f"characters plus the {r['original_link_chars']}-character link "
        "`https://<10>.execute-api.ap-northeast-1.amazonaws.com/accept?contactid=<36>`. We "
        f"model it as a {len(ORIGINAL_INVITE_JA)}-character Japanese text + that link: "
        f"{orig['ja']['invite_chars']} UCS-2 characters → **{orig['ja']['invite_segments']} "
        "segments**. Assumption: the original's texts to the caller were short Japanese "
        "texts like Hotline's, 1 segment each (the issue does not quote them). The English "
        f"column models a {len(ORIGINAL_INVITE_EN)}-character English text + the same link "
        f"({orig['en']['invite_chars']} GSM-7 characters → {orig['en']['invite_segments']} "
        "segment); the original was Japanese-only as far as the issue says.",
        "",
    ]
    return "\n".join(out)
