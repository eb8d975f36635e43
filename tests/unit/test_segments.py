"""SMS segmentation as the network does it: GSM-7 (160 septets, 153 per part) when every
character is in the GSM-7 alphabet, else UCS-2 (70 UTF-16 units, 67 per part), each part
filled without splitting an escape from its character or a surrogate pair."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline_core.messages import text
from hotline_tools.segments import sms_encoding, sms_parts, sms_segments, sms_units

EMOJI = "😀"  # outside the BMP: a surrogate pair, two UTF-16 units
ESC = 0x1B  # the GSM-7 escape to the extension table


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        # GSM-7 septets
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("[" * 80, 1),  # an extension-table character costs two septets
        ("[" * 81, 2),
        ("a" * 158 + "€", 1),  # 160 septets
        ("a" * 159 + "€", 2),  # 161
        # UCS-2 units
        ("あ" * 70, 1),
        ("あ" * 71, 2),
        ("あ" * 134, 2),
        ("あ" * 135, 3),
        ("a" * 69 + "あ", 1),  # one Japanese character turns the whole message UCS-2
        ("a" * 70 + "あ", 2),
        ("a" * 100 + "ç", 2),  # ç is not GSM-7 (only Ç is): 101 UCS-2 units
        ("a" * 100 + "é", 1),  # é is
        (EMOJI * 35, 1),
        (EMOJI * 36, 2),
        ("あ" * 68 + EMOJI, 1),  # 70 units: one SMS, nothing to split
        ("あ" * 69 + EMOJI, 2),
    ],
)
def test_segments_at_the_single_and_part_limits(body, segments):
    assert sms_segments(body) == segments


@pytest.mark.parametrize(
    ("body", "units", "segments"),
    [
        # 134 UCS-2 units, but the pair cannot straddle the first part's end: 66 | 2+65 | 1
        ("あ" * 66 + EMOJI + "あ" * 66, 134, 3),
        ("あ" * 65 + EMOJI + "あ" * 67, 134, 2),  # the pair ends the first part exactly
        (EMOJI * 67, 134, 3),  # 33 pairs (66 units) per part
        (EMOJI * 66, 132, 2),
        # 306 septets, but the escape stays with its character: 152 | 2+151 | 1
        ("a" * 152 + "€" + "a" * 152, 306, 3),
        ("a" * 151 + "€" + "a" * 153, 306, 2),  # the escape pair ends the first part exactly
        ("a" * 152 + "€" + "a" * 7, 161, 2),
        ("[" * 153, 306, 3),  # 76 pairs (152 septets) per part
    ],
)
def test_a_surrogate_pair_or_an_escape_never_straddles_a_part_boundary(body, units, segments):
    assert sms_units(body) == units
    assert sms_segments(body) == segments


def test_parts_are_filled_greedily_and_joined_give_the_body_back():
    parts = sms_parts("あ" * 66 + EMOJI + "あ" * 66)
    assert parts == ["あ" * 66, EMOJI + "あ" * 65, "あ"]
    parts = sms_parts("a" * 152 + "€" + "a" * 152)
    assert parts == ["a" * 152, "€" + "a" * 151, "a"]


@pytest.mark.parametrize(
    ("body", "encoding", "units"),
    [
        ("Call +817033334444", "GSM-7", 18),
        ("{}€", "GSM-7", 6),
        ("ミズキ", "UCS-2", 3),
        ("a" + EMOJI, "UCS-2", 3),
        ("", "GSM-7", 0),
    ],
)
def test_encoding_and_units(body, encoding, units):
    assert sms_encoding(body) == encoding
    assert sms_units(body) == units


# An independent reference: encode for real (GSM-7 septets with the escape, UTF-16 code
# units) and cut the encoded form into parts, never after an escape or a high surrogate.
GSM7_EXT = "^{}\\[~]|€\f"


def _reference_segments(body: str) -> int:
    if sms_encoding(body) == "GSM-7":
        units = []
        for c in body:
            units += [ESC, ord(c)] if c in GSM7_EXT else [ord(c)]
        single, part = 160, 153

        def splits_pair(unit: int) -> bool:
            return unit == ESC

    else:
        data = body.encode("utf-16-le")
        units = [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]
        single, part = 70, 67

        def splits_pair(unit: int) -> bool:
            return 0xD800 <= unit <= 0xDBFF

    if len(units) <= single:
        return 1
    count, i = 0, 0
    while i < len(units):
        end = min(i + part, len(units))
        if end < len(units) and splits_pair(units[end - 1]):
            end -= 1
        count, i = count + 1, end
    return count


def _runs(alphabet: list[str]) -> st.SearchStrategy[str]:
    # Runs of one character, so that bodies reach past 160 septets and 70 units often.
    run = st.tuples(st.sampled_from(alphabet), st.integers(1, 70))
    return st.lists(run, max_size=8).map(lambda runs: "".join(c * n for c, n in runs))


MIXED = _runs(["a", " ", "€", "[", "é", "あ", "ミ", EMOJI, "ç"])
GSM = _runs(["a", "Z", "0", " ", "€", "[", "~", "é", "\n"])


@given(st.one_of(MIXED, GSM, st.text()))
def test_segments_match_a_count_on_the_encoded_message(body):
    assert sms_segments(body) == _reference_segments(body)


@given(st.one_of(MIXED, GSM))
def test_every_part_fits_and_none_could_have_taken_the_next_character(body):
    parts = sms_parts(body)
    assert "".join(parts) == body
    assert sms_segments(body) == len(parts)
    if len(parts) == 1:
        return
    limit = 153 if sms_encoding(body) == "GSM-7" else 67
    cost = sms_units if sms_encoding(body) == "GSM-7" else _utf16_units
    for part, following in itertools.pairwise(parts):
        assert 0 < cost(part) <= limit
        assert cost(part + following[0]) > limit  # filled as far as it goes
    assert 0 < cost(parts[-1]) <= limit


def _utf16_units(s: str) -> int:
    # A part of a UCS-2 message may itself be all GSM-7 characters; count it as UCS-2.
    return len(s.encode("utf-16-le")) // 2


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("accepted", {"receiver": "{name}", "phone": "+817033334444"}),
        ("accepted_late", {"receiver": "{name}", "phone": "+817033334444"}),
        ("declined", {"receiver": "{name}"}),
        ("timed_out", {"receiver": "{name}"}),
        ("mutual_first", {"other": "{name}", "phone": "+817033334444"}),
        ("mutual_second", {"other": "{name}", "phone": "+819011112222"}),
        ("benefit", {"url": "https://example.com/campaign/members-only"}),
    ],
)
def test_every_text_to_a_caller_is_one_segment(key, values, lang):
    name = "ミズキ" if lang == "ja" else "Mizuki"
    body = text(key, lang, **{k: v.format(name=name) for k, v in values.items()})
    assert sms_segments(body) == 1, body


def test_the_japanese_invitation_fits_one_segment_with_a_short_domain_up_to_a_13_unit_name():
    link = "https://h.example.jp/a/hgTxPk_xhPAsPPlzOc0sYQ"
    assert sms_segments(text("invite", "ja", caller="タ" * 13, link=link)) == 1
    assert sms_segments(text("invite", "ja", caller="タ" * 14, link=link)) == 2
