"""What LINE users see: the invitation with its two postback buttons, a text as a LINE
message, the webhook's replies, and the postback data the buttons carry.

The postback data (LINE returns it verbatim in the webhook, at most 300 characters) is
`v=1&a=yes|no&t=<link token>`: the token is the request's 128-bit secret, the same one the
SMS link carries, so data naming a request cannot be made up; the webhook also checks that
the LINE user who tapped is the one linked to that request's receiver, so data copied from
someone else's chat answers nothing. A tap repeated later is a repeated answer: it changes
nothing and is told so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlencode

from hotline_core.phone import shown_phone

if TYPE_CHECKING:
    from hotline_core.directory import Lang

Answer = Literal["yes", "no"]
DATA_VERSION = "1"
MAX_DATA = 300  # LINE's limit on a postback action's data

_T: dict[str, dict[Lang, str]] = {
    "invite": {
        "ja": "{caller}さんが話したいそうです。今、話せますか？",
        "en": "{caller} wants to talk. Can you talk now?",
    },
    "invite_alt": {
        "ja": "{caller}さんが話したいそうです。",
        "en": "{caller} wants to talk.",
    },
    "yes": {"ja": "はい", "en": "Yes"},
    "no": {"ja": "今は無理", "en": "Not now"},
    # Replies to a tap.
    "accepted": {
        "ja": "{caller}さんに伝えました。電話がかかってきます。",
        "en": "{caller} has been told. Expect a call.",
    },
    "accepted_late": {
        "ja": "{caller}さんに今なら話せると伝えましたが、今は忙しいかもしれません。"
        "話したいときはホットライン {hotline} に電話してください。",
        "en": "{caller} has been told you are free now, but may be busy by now. "
        "To start over, call the hotline at {hotline}.",
    },
    "declined": {
        "ja": "{caller}さんに今は話せないと伝えました。",
        "en": "{caller} has been told you can't talk now.",
    },
    "mutual": {
        "ja": "{caller}さんもあなたに電話しました。{caller}さんから電話が来ます。",
        "en": "{caller} called you too and will call you.",
    },
    "already": {
        "ja": "この呼び出しにはもう答えています。",
        "en": "You have already answered this request.",
    },
    "already_told": {
        "ja": "{caller}さんには、今は話せないことがもう伝わっています。",
        "en": "{caller} has already been told you can't talk now.",
    },
    "too_late": {
        "ja": "この呼び出しは期限が切れました。話したいときはホットライン {hotline} に"
        "電話してください。",
        "en": "This request has expired. To talk, call the hotline at {hotline}.",
    },
}

# Said before the person is linked, so in both languages, Japanese first.
_BOTH: dict[str, tuple[str, str]] = {
    "follow": (
        "友だち追加ありがとうございます。ホットラインの連絡をLINEで受け取るには、"
        "管理者から受け取った6桁のコードをこのトークに送ってください。",
        "Thank you for adding Hotline. To get its messages on LINE, send the 6-digit code "
        "you got from the hotline's administrator here.",
    ),
    "linked": (
        "連携できました。これからはホットラインの連絡をLINEでお届けします。",
        "Linked. Hotline's messages now come to you on LINE.",
    ),
    "wrong_code": (
        "コードが違うか、期限が切れています。確かめてもう一度送ってください。",
        "That code is wrong or has expired. Please check it and send it again.",
    ),
    "too_many": (
        "コードの誤りが続いたため、今日はこれ以上受け付けられません。明日もう一度お試しください。",
        "Too many wrong codes. Please try again tomorrow.",
    ),
    "retry": (
        "うまく伝えられませんでした。もう一度ボタンを押してください。",
        "That did not go through. Please press the button again.",
    ),
    "invalid": (
        "このボタンは使えません。",
        "This button cannot be used.",
    ),
}


def text_message(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def reply_text(key: str, lang: Lang, **values: str) -> dict[str, Any]:
    """One reply to a tap, in the receiver's language."""
    if "hotline" in values:
        values["hotline"] = shown_phone(values["hotline"], lang)
    return text_message(_T[key][lang].format(**values))


def both_languages(key: str) -> dict[str, Any]:
    """A reply to someone not (yet) linked: Japanese, then English."""
    ja, en = _BOTH[key]
    return text_message(f"{ja}\n\n{en}")


def postback_data(answer: Answer, token: str) -> str:
    data = urlencode({"v": DATA_VERSION, "a": answer, "t": token})
    assert len(data) <= MAX_DATA
    return data


@dataclass(frozen=True)
class Postback:
    answer: Answer
    token: str


def parse_postback(data: str) -> Postback | None:
    """The answer and link token in a button's data; None for anything else."""
    if len(data) > MAX_DATA:
        return None
    try:
        fields = parse_qs(data, strict_parsing=True, max_num_fields=3)
    except ValueError:
        return None
    values = {k: v[0] for k, v in fields.items() if len(v) == 1}
    if len(values) != 3 or values.get("v") != DATA_VERSION:
        return None
    answer = values.get("a")
    token = values.get("t")
    if answer not in ("yes", "no") or not token:
        return None
    return Postback(answer, token)  # type: ignore[arg-type]


def invitation(caller: str, lang: Lang, token: str) -> list[Mapping[str, Any]]:
    """The receiver's invitation: one confirm template, two postback buttons, no URL."""
    labels = {answer: _T[answer][lang] for answer in ("yes", "no")}
    return [
        {
            "type": "template",
            "altText": _T["invite_alt"][lang].format(caller=caller),
            "template": {
                "type": "confirm",
                "text": _T["invite"][lang].format(caller=caller),
                "actions": [
                    {
                        "type": "postback",
                        "label": labels[answer],
                        "data": postback_data(answer, token),
                        "displayText": labels[answer],
                    }
                    for answer in ("yes", "no")
                ],
            },
        }
    ]
