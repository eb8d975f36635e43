"""Phone numbers: E.164 validation, the masking every log line must use, and the form a text
shows a number in."""

from __future__ import annotations

import re

# [0-9], not \d: \d also matches other scripts' digits ("+81٢٣٤...") that no phone dials.
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
E164 = re.compile(E164_PATTERN)


def is_e164(value: str) -> bool:
    return bool(E164.fullmatch(value))


def mask_phone(phone: str) -> str:
    """Keep the country prefix and the last two digits: enough to tell people apart in a log,
    not enough to call anyone."""
    if len(phone) <= 5:
        return "***"
    return phone[:3] + "*" * (len(phone) - 5) + phone[-2:]


# Japanese numbers by kind, keyed by the national significant number (the digits after +81):
# the domestic form is "0" and those digits, grouped as Japanese people write them.
_JP_GROUPED: tuple[tuple[re.Pattern[str], str], ...] = (
    # 0120 (toll-free) and 0800 (toll-free) first: "800…" also starts like an 080 mobile.
    (re.compile(r"(120)([0-9]{3})([0-9]{3})"), r"0\1-\2-\3"),
    (re.compile(r"(800)([0-9]{3})([0-9]{4})"), r"0\1-\2-\3"),
    # 070/080/090 mobile, 050 IP phone, 020/060: 0A0-XXXX-XXXX.
    (re.compile(r"([2-9]0)([0-9]{4})([0-9]{4})"), r"0\1-\2-\3"),
    # Tokyo and Osaka, the two one-digit area codes: 03-XXXX-XXXX, 06-XXXX-XXXX.
    (re.compile(r"([36])([0-9]{4})([0-9]{4})"), r"0\1-\2-\3"),
)
# Any other fixed-line number: ten domestic digits, area code of 2 to 5 digits. Where the area
# code ends depends on the national table, so no hyphens rather than a wrong one: "0451234567".
_JP_OTHER_FIXED = re.compile(r"[1-9][0-9]{8}")


def shown_phone(phone: str, lang: str) -> str:
    """`phone` as a text in `lang` should show it, still dialling when tapped.

    A Japanese text shows a Japanese (+81) number in domestic form: 070/080/090, 050, 020 and
    060 as 0A0-XXXX-XXXX; Tokyo and Osaka as 03-XXXX-XXXX and 06-XXXX-XXXX; 0120-XXX-XXX and
    0800-XXX-XXXX. Other fixed-line numbers (area codes of 2 to 5 digits, which only the
    national numbering table tells apart) as their ten domestic digits without hyphens, so no
    hyphen is ever in the wrong place. Every other number, every number whose length fits no
    Japanese kind, and every number in an English text stays E.164.
    """
    if lang != "ja" or not phone.startswith("+81") or not is_e164(phone):
        return phone
    national = phone[3:]
    for pattern, grouped in _JP_GROUPED:
        if pattern.fullmatch(national):
            return pattern.sub(grouped, national)
    if _JP_OTHER_FIXED.fullmatch(national):
        return "0" + national
    return phone
