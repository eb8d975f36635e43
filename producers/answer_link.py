"""HTTP API behind the link in the receiver's SMS. GET shows the page and changes nothing
(SMS apps prefetch links); a form POST with `answer=yes|no` answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hotline_core import answering
from hotline_core.clock import now
from hotline_core.pages import SECURITY_HEADERS, Page, error_page
from hotline_core.ports import PublishFailed
from hotline_core.runtime.budgets import invocation_deadline
from hotline_core.runtime.deps import handler_deps
from hotline_core.runtime.observability import logger, metrics

app = APIGatewayHttpResolver()
deps = handler_deps()
MAX_FORM_BYTES = 1024


def _respond(page: Page) -> Response[str]:
    return Response(status_code=page.status_code, headers=dict(SECURITY_HEADERS), body=page.html)


def _answer_field() -> str | None:
    event = app.current_event
    body = event.decoded_body or ""
    if len(body) > MAX_FORM_BYTES:
        return None
    values = parse_qs(body, max_num_fields=5).get("answer", [])
    return values[0] if len(values) == 1 else None


@app.get("/a/<token>")
def show(token: str) -> Response[str]:
    return _respond(answering.show_answer_page(token=token, store=deps().store, now=now()))


@app.post("/a/<token>")
def answer(token: str) -> Response[str]:
    try:
        given = _answer_field()
    except (UnicodeDecodeError, ValueError):
        given = None
    try:
        answered = answering.answer(
            token=token, answer=given, store=deps().store, bus=deps().bus, now=now()
        )
    except PublishFailed:
        # The answer is stored but not yet announced (EventBridge refused the entry, or the
        # PutEvents call itself failed); pressing again announces it.
        logger.exception("answer stored, announcement failed")
        return _failed()
    if answered.page.status_code == 200 and given in ("yes", "no"):
        metrics.add_metric(name="Answers", unit=MetricUnit.Count, value=1)
    settled = answered.settled
    if settled is not None and settled.answered_at is not None:
        # From the call to the tap, for the answers that settled a request.
        seconds = (settled.answered_at - settled.requested_at).total_seconds()
        metrics.add_metric(name="AnswerTimeSeconds", unit=MetricUnit.Seconds, value=seconds)
    return _respond(answered.page)


@app.not_found
def not_found(_: Exception) -> Response[str]:
    return _respond(error_page(404, "not_found"))


@app.exception_handler(Exception)
def unexpected(_: Exception) -> Response[str]:
    # A DynamoDB outage, say: the receiver gets our page (with its headers: no referrer, no
    # caching) saying to try again, not API Gateway's bare 500. Nothing was answered, or the
    # answer is stored and pressing again announces it.
    logger.exception("answer page failed")
    return _failed()


def _failed() -> Response[str]:
    """The retry page. It is an answer, not a function error, so the Errors alarm never sees
    it: AnswerPageFailures is what its alarm watches."""
    metrics.add_metric(name="AnswerPageFailures", unit=MetricUnit.Count, value=1)
    return _respond(error_page(503, "retry"))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with invocation_deadline(context):
        return app.resolve(event, context)
