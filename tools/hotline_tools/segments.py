"""SMS segments, counted as the network splits a message: GSM-7 (160 septets, 153 per part)
when every character is in the GSM-7 alphabet, else UCS-2 (70 UTF-16 units, 67 per part).
Every segment is paid for. Only the tools and the benchmarks count them; nothing on Lambda
does."""

from __future__ import annotations

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
