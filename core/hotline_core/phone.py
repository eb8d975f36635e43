"""Phone numbers: E.164 validation and the masking every log line must use."""

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
