"""SMS segments, counted as the network splits a message: GSM-7 (160 septets, 153 per part)
when every character is in the GSM-7 alphabet, else UCS-2 (70 UTF-16 units, 67 per part).
Every segment is paid for. Only the tools count them (the benchmarks, and `hotline directory
check`, which warns of a name that makes an invitation longer than the README promises);
nothing on Lambda does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hotline_core.directory import Directory, Lang
from hotline_core.messages import text
from hotline_core.requests import link_url, new_link

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")  # the extension table: an escape septet + the character
# Limits for one SMS and for each part of a longer one (a part gives 6 of its 140 bytes to the
# header that joins the parts again); GSM-7 counts septets, UCS-2 UTF-16 code units.
GSM7_LIMITS = (160, 153)
UCS2_LIMITS = (70, 67)


def sms_encoding(body: str) -> str:
    """The encoding the body is sent in: GSM-7 when every character is in its alphabet (basic
    or extension table), else UCS-2; one character outside it makes the whole message UCS-2."""
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in body) else "UCS-2"


def _unit_costs(body: str, encoding: str) -> list[int]:
    if encoding == "GSM-7":
        return [2 if c in GSM7_EXTENDED else 1 for c in body]
    # Outside the Basic Multilingual Plane a character is a surrogate pair: two units.
    return [2 if ord(c) > 0xFFFF else 1 for c in body]


def sms_units(body: str) -> int:
    """What the body takes in its encoding: GSM-7 septets or UTF-16 code units."""
    return sum(_unit_costs(body, sms_encoding(body)))


def sms_parts(body: str) -> list[str]:
    """The body split as the network sends it: whole when it fits one SMS, else parts of at
    most 153 septets / 67 units, each filled as far as it goes without splitting an escape
    from its character or a surrogate pair (one that does not fit starts the next part, so
    dividing the units by 153 or 67 can come out a segment short)."""
    encoding = sms_encoding(body)
    costs = _unit_costs(body, encoding)
    single, part = GSM7_LIMITS if encoding == "GSM-7" else UCS2_LIMITS
    if sum(costs) <= single:
        return [body]
    parts: list[str] = []
    start = used = 0
    for i, cost in enumerate(costs):
        if used + cost > part:
            parts.append(body[start:i])
            start, used = i, 0
        used += cost
    parts.append(body[start:])
    return parts


def sms_segments(body: str) -> int:
    """Segments an SMS costs (each one is paid for), by the real GSM-7 / UCS-2 rules."""
    return len(sms_parts(body))


# --- the invitation's promise ---------------------------------------------------------------
# What the README promises for the receiver's invitation (its Benchmarks section, measured in
# BENCHMARKS.md), in segments by the receiver's language: Japanese 2 with the default
# execute-api link, 1 with a short domain of one's own (PublicBaseUrl, CustomDomainName);
# English 1 either way (BENCHMARKS.md's target for it). It holds up to a length of name.
INVITATION_PROMISE: dict[tuple[Lang, bool], int] = {
    ("ja", False): 2,
    ("ja", True): 1,
    ("en", False): 1,
    ("en", True): 1,
}
# The default link's base when no other is given: an API id is 10 characters, and Tokyo's
# region name is as long as most (the template makes https://<id>.execute-api.<region>.<suffix>).
DEFAULT_LINK_BASE = "https://a1b2c3d4e5.execute-api.ap-northeast-1.amazonaws.com"
LANG_NAMES: dict[Lang, str] = {"ja": "Japanese", "en": "English"}


def is_default_link(base_url: str) -> bool:
    """Whether a link base is API Gateway's own endpoint rather than a short domain."""
    return ".execute-api." in base_url


@dataclass(frozen=True)
class LongInvitation:
    """An invitation that takes more segments than promised, because of the caller's name."""

    name: str
    lang: Lang
    segments: int
    promise: int
    fits: int  # how many of the name's first characters would keep the promise
    made_ucs2: bool  # the name alone turns a GSM-7 text into UCS-2 (70 a segment, not 160)


def long_invitations(directory: Directory, base_url: str | None = None) -> list[LongInvitation]:
    """Each person's invitation over its promise, in the language of each person it can go to
    (the others in their circles), with the link the Lambda would make: on `base_url`, else
    on the default execute-api link. In directory order, once per name and language."""
    base = base_url or DEFAULT_LINK_BASE
    link = link_url(base, new_link(datetime.now(UTC)).token)  # every token is as long
    found: dict[tuple[str, Lang], LongInvitation] = {}  # by name and language
    for circle in directory.circles:
        for caller in circle.people:
            for lang in dict.fromkeys(p.lang for p in circle.others(caller.phone)):
                if (caller.name, lang) in found:
                    continue
                promise = INVITATION_PROMISE[lang, not is_default_link(base)]

                def invitation(name: str, lang: Lang = lang) -> str:
                    return text("invite", lang, caller=name, link=link)

                body = invitation(caller.name)
                if sms_segments(body) <= promise:
                    continue
                fits = 0
                while sms_segments(invitation(caller.name[: fits + 1])) <= promise:
                    fits += 1
                found[caller.name, lang] = LongInvitation(
                    name=caller.name,
                    lang=lang,
                    segments=sms_segments(body),
                    promise=promise,
                    fits=fits,
                    made_ucs2=sms_encoding(body) != sms_encoding(invitation("")),
                )
    return list(found.values())
