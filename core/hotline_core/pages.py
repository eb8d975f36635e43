"""The small mobile page behind the link in the receiver's SMS.

GET only shows it (SMS apps prefetch links for previews); the buttons POST to the same URL.
Every value is HTML-escaped; the page loads nothing from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hotline_core.directory import Lang
from hotline_core.requests import CallRequest, State

SECURITY_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}

View = Literal["ask", "ask_late", "accepted", "accepted_late", "mutual", "declined", "repeat"]

_T: dict[str, dict[Lang, str]] = {
    "title": {"ja": "ホットライン", "en": "Hotline"},
    "ask": {"ja": "{caller}さんが話したいそうです。", "en": "{caller} wants to talk."},
    "ask_late": {
        "ja": "{caller}さんの呼び出しは時間切れになりましたが、今から話せることを伝えられます。",
        "en": "{caller}'s request timed out, but you can still say you are free now.",
    },
    "yes": {"ja": "話せる（電話してもらう）", "en": "Yes, call me"},
    "no": {"ja": "今は無理", "en": "Not now"},
    "accepted": {
        "ja": "{caller}さんに伝えました。電話がかかってきます。",
        "en": "{caller} has been told. Expect a call.",
    },
    "accepted_late": {
        "ja": "{caller}さんに伝えましたが、今は忙しいかもしれません。"
        "話したいときはホットライン {hotline} に電話してください。",
        "en": "{caller} has been told, but may be busy by now. "
        "To start over, call the hotline at {hotline}.",
    },
    "mutual": {
        "ja": "{caller}さんもあなたに電話しました。{caller}さんから電話が来ます。",
        "en": "{caller} called you too and will call you.",
    },
    "declined": {
        "ja": "{caller}さんに今は話せないと伝えました。",
        "en": "{caller} has been told you can't talk now.",
    },
    "not_found": {
        "ja": "このリンクは無効です。",
        "en": "This link is not valid.",
    },
    "expired": {
        "ja": "このリンクは期限切れです。",
        "en": "This link has expired.",
    },
    "retry": {
        "ja": "うまく伝えられませんでした。もう一度ボタンを押してください。",
        "en": "That did not go through. Please press the button again.",
    },
    "bad_answer": {
        "ja": "答えが読み取れませんでした。もう一度ボタンを押してください。",
        "en": "That answer was not understood. Please press a button again.",
    },
}


@dataclass(frozen=True)
class Page:
    status_code: int
    html: str


VIEWS: dict[State, View] = {
    State.INQUIRY: "ask",
    State.ACCEPTED: "accepted",
    State.ACCEPTED_LATE: "accepted_late",
    State.ACCEPTED_MUTUAL: "mutual",
    State.DECLINED: "declined",
    State.TIMED_OUT: "ask_late",
}


def view_for(request: CallRequest) -> View:
    return VIEWS[request.state]


def answer_page(request: CallRequest, view: View | None = None) -> Page:
    lang = request.receiver.lang
    view = view or view_for(request)
    values = {"caller": escape(request.caller.name), "hotline": escape(request.hotline_number)}
    body = f"<p>{_T[view][lang].format(**values)}</p>" if view != "repeat" else ""
    if view in ("ask", "ask_late"):
        body += (
            '<form method="post"><input type="hidden" name="answer" value="yes">'
            f'<button class="yes" type="submit">{_T["yes"][lang]}</button></form>'
        )
        if view == "ask":
            body += (
                '<form method="post"><input type="hidden" name="answer" value="no">'
                f'<button class="no" type="submit">{_T["no"][lang]}</button></form>'
            )
    return Page(200, _document(lang, body))


def error_page(status_code: int, key: str, lang: Lang = "ja") -> Page:
    other: Lang = "en" if lang == "ja" else "ja"
    # The page may not know whose link it is: say it in both languages, preferred first.
    body = f'<p>{_T[key][lang]}</p><p lang="{other}">{_T[key][other]}</p>'
    return Page(status_code, _document(lang, body))


def _document(lang: Lang, body: str) -> str:
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{_T['title'][lang]}</title><style>"
        "body{font-family:system-ui,'Noto Sans CJK JP','Noto Sans JP',sans-serif;"
        "max-width:28rem;margin:2rem auto;padding:0 1rem;font-size:1.2rem;line-height:1.6}"
        "button{display:block;width:100%;padding:1rem;margin:.8rem 0;font-size:1.2rem;"
        "border:0;border-radius:.6rem}.yes{background:#1a7f37;color:#fff}"
        ".no{background:#ddd;color:#222}</style></head>"
        f"<body><h1>{_T['title'][lang]}</h1>{body}</body></html>"
    )
