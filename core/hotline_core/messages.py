"""Every text a person reads or hears, in Japanese (default) and English.

SMS bodies are kept short: Japanese SMS are UCS-2, 70 characters in one segment, 67 per part
once split, and every segment is paid for. The tools count them (`hotline_tools.segments`);
nothing on Lambda needs to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotline_core.phone import shown_phone

if TYPE_CHECKING:
    from hotline_core.directory import Lang

_TEXTS: dict[str, dict[Lang, str]] = {
    "invite": {
        # No "tap if you can": the page's two buttons say it, and every character counts
        # (UCS-2: a 13-character name still fits one segment with a short link).
        "ja": "{caller}さんが話したいそうです。{link}",
        "en": "{caller} wants to talk. If you can, tap: {link}",
    },
    "accepted": {
        "ja": "{receiver}さんが話せます。{phone} に電話してください",
        "en": "{receiver} can talk. Call {phone}",
    },
    "accepted_late": {
        "ja": "{receiver}さんが今なら話せます。{phone} に電話してください",
        "en": "{receiver} is free now. Call {phone}",
    },
    "declined": {
        "ja": "{receiver}さんは今は話せません。",
        "en": "{receiver} can't talk right now.",
    },
    "timed_out": {
        "ja": "{receiver}さんは今は話せないようです。連絡を待ってください",
        "en": "{receiver} can't talk right now; wait for their call",
    },
    "mutual_first": {
        "ja": "{other}さんもあなたと話したいそうです。{phone} に電話してください",
        "en": "{other} wants to talk to you too. Call {phone}",
    },
    "mutual_second": {
        "ja": "{other}さんもあなたと話したいそうです。{other}さんから電話が来ます（{phone}）",
        "en": "{other} wants to talk to you too and will call you ({phone})",
    },
    "benefit": {
        "ja": "キャンペーンページ: {url}",
        "en": "Your campaign page: {url}",
    },
    # Spoken by the contact flow (Amazon Connect text-to-speech).
    "prompt_asking": {
        "ja": "{receiver}さんに聞いてみます。電話を切ってお待ちください。",
        "en": "OK, I'll ask {receiver}. Please hang up and wait.",
    },
    "prompt_unregistered": {
        "ja": "この電話番号は登録されていません。",
        "en": "This phone is not registered.",
    },
    "prompt_withheld": {
        "ja": "番号を通知しておかけ直しください。先頭に186をつけると通知されます。",
        "en": "Your number is withheld. Please call again with your number shown.",
    },
    "prompt_no_circle": {
        "ja": "この番号は現在使われていません。",
        "en": "This number is not in service.",
    },
    "prompt_choose": {
        "ja": "話したい相手の番号を押してください。{menu}。",
        "en": "Press the number of who you want to talk to. {menu}.",
    },
    "prompt_choose_again": {
        "ja": "番号が正しくありません。話したい相手の番号を押してください。{menu}。",
        "en": "That is not on the list. Press the number of who you want to talk to. {menu}.",
    },
    "prompt_pin": {
        "ja": "暗証番号を入力し、最後にシャープを押してください。",
        "en": "Enter your PIN, then press hash.",
    },
    "prompt_pin_again": {
        "ja": "暗証番号が違います。もう一度入力し、最後にシャープを押してください。",
        "en": "Wrong PIN. Enter it again, then press hash.",
    },
    "prompt_locked": {
        "ja": "暗証番号の誤りが続いたため、しばらくご利用いただけません。",
        "en": "Too many wrong PINs. Please try again later.",
    },
    "prompt_goodbye": {
        "ja": "お電話ありがとうございました。失礼いたします。",
        "en": "Thank you for calling. Goodbye.",
    },
    "prompt_waiting": {
        "ja": "{receiver}さんの返事をまだ待っています。電話を切ってお待ちください。",
        "en": "Still waiting for {receiver} to answer. Please hang up and wait.",
    },
    "prompt_mutual": {
        "ja": "{receiver}さんもあなたと話したがっています。SMSで番号をお送りします。",
        "en": "{receiver} wants to talk to you too. I'll text you both.",
    },
    "prompt_quiet": {
        "ja": "{receiver}さんは{until}までおやすみ時間です。そのあとでおかけ直しください。",
        "en": "{receiver} is in quiet hours until {until}. Please call again after that.",
    },
}

MENU_SEPARATOR: dict[Lang, str] = {"ja": "、", "en": ", "}


def menu(names: list[str], lang: Lang) -> str:
    """The spoken menu, in directory order: "1: ミズキ、2: ハルト"."""
    return MENU_SEPARATOR[lang].join(f"{i}: {name}" for i, name in enumerate(names, start=1))


def text(key: str, lang: Lang, **values: str) -> str:
    """The text `key` in `lang`, filled with `values`. A `phone` (E.164) is shown as people
    read it in that language: a Japanese number in domestic form in a Japanese text
    ("070-3333-4444"), E.164 otherwise (`phone.shown_phone`); either dials when tapped."""
    if "phone" in values:
        values["phone"] = shown_phone(values["phone"], lang)
    return _TEXTS[key][lang].format(**values)
