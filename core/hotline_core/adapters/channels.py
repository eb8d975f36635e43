"""One message, the person's channel: LINE for a phone linked to a LINE user, SMS otherwise
and whenever LINE fails. Used inside a once-only effect (`idempotency.OnceOnlyMessages`), so the
choice is made once per message, after the claim, and a fallback is the same claim's.

A push carries the retry key of its once-only key, on every attempt within the invocation and
on Lambda's retry a minute later: LINE sends it once however often it is asked. Only a push
that still fails after the retries (a 4xx, or 5xx/429/no answer until the budget ran out) is
sent as SMS instead. Left: a push whose every attempt went unanswered may have reached LINE
after all, and then the person gets both (LINE's answer to a later attempt, a 409, would have
told; there was none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hotline_core.adapters.line_api import retry_key

if TYPE_CHECKING:
    from hotline_core.adapters.line_api import LineApi
    from hotline_core.adapters.line_links import LineLinks


class LineFirst:
    """`links` and `api` are built on first use: a message to someone not linked reads the
    link table only, never the channel's secret."""

    def __init__(
        self,
        links: Callable[[], LineLinks],
        api: Callable[[], LineApi],
        count: Callable[[str], None],
        failed: Callable[[BaseException], None] = lambda exc: None,
    ) -> None:
        self._links = links
        self._api = api
        self._count = count
        self._failed = failed

    def user_for(self, phone: str) -> str | None:
        """The LINE user linked to `phone`. A failed read raises: the effect is released
        and retried, as when the request itself cannot be read."""
        return self._links().user_for(phone)

    def push(self, user_id: str, messages: Sequence[Mapping[str, Any]], *, once_key: str) -> bool:
        """Push `messages`; False when LINE did not take them (counted, for the SMS)."""
        try:
            self._api().push(user_id, messages, retry_key=retry_key(once_key))
        except Exception as exc:  # noqa: BLE001 - any LINE failure (the secret's read too) falls back
            self._count("LinePushFailed")
            self._failed(exc)
            return False
        self._count("LinePushSent")
        return True
