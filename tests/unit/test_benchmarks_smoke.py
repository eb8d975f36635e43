"""The benchmarks' count figures (not timings) meet their targets: SMS segments, Lambda
invocations per call and AWS API calls per conversation. Runs the same code `make bench`
runs, without the slow parts; and the benchmarks' own bookkeeping, without timing anything."""

from __future__ import annotations

from benchmarks import api_calls, cold_start, first_call, segments
from benchmarks.common import SHORT_BASE
from hotline_core import messages
from hotline_tools.segments import sms_segments


def test_segment_and_flow_invocation_figures_meet_their_targets():
    # tests/conftest.py already points every client at fake credentials; no global changes.
    seg = segments.measure()
    assert seg["headline"]["ja_invite_default"] <= 2
    assert seg["headline"]["ja_invite_short"] == 1
    assert seg["headline"]["caller_max"] == 1
    assert all(seg["targets"].values())
    assert "## 1. SMS segments" in segments.render(seg)

    counter = api_calls.ApiCallCounter()
    engine = api_calls.start_engine(counter)
    try:
        flow = api_calls.flow_invocations(engine)
    finally:
        engine.stop()
    assert flow["registered"] == 1
    assert flow["unregistered"] <= 1
    assert flow["target_met"]


def test_every_text_to_a_caller_is_in_the_segment_figures():
    # A new text to a caller must show up in the report (and in its 1-segment target).
    to_callers = {k for k in messages._TEXTS if not k.startswith("prompt_")} - {"invite"}
    assert to_callers == set(segments.CALLER_TEXTS)
    counted = {t["text"] for t in segments.measure()["texts"]}
    assert to_callers <= counted


def test_the_longest_name_figure_is_where_the_invitation_gains_a_segment():
    seg = segments.measure()
    longest = seg["headline"]["ja_name_max_short"]
    invite = segments._renderers("ja", SHORT_BASE, "k8_PpA3E61UOJXGet5c3qw")["invite"]
    assert sms_segments(invite("ア" * longest)) == 1
    assert sms_segments(invite("ア" * (longest + 1))) == 2
    assert segments.longest_name(lambda name: "あ" * 60 + name, "ア", 1) == 10
    assert segments.longest_name(lambda name: "あ" * 60 + name, "ア", 2) == 74  # 134 - 60


def test_every_menu_and_pin_path_is_counted_and_gets_through():
    cases = api_calls.flow_paths()
    assert {c["key"] for c in cases} == {
        "menu",
        "menu_retry",
        "pin",
        "pin_retry",
        "pin_menu",
        "benefits",
        "benefits_retry",
    }
    assert all(c["ok"] for c in cases), cases
    # Recognising the caller is one invocation; every PIN or menu entry typed is one more.
    assert all(c["invocations"] >= 2 for c in cases), cases
    assert "## 2. Lambda invocations" in api_calls.render_flow(
        {"registered": 1, "unregistered": 1, "original": 2, "other": cases}
    )


def test_an_accepted_conversation_stays_within_its_api_call_budget():
    # Counted at the botocore level while the local runtime plays each conversation warm.
    calls = api_calls.measure()
    assert calls["counts"]["accepted"] <= api_calls.TARGET_ACCEPTED
    assert calls["counts"]["timed out"] <= api_calls.TARGET_TIMED_OUT
    assert calls["target_met"]
    # The original's figures are its own play.py's, run here, and agree with its listed calls.
    assert calls["original_counts"] == calls["original_model_counts"]
    assert calls["original_calls"]["accepted"]["s3.GetObject"] == 1
    # The directory: a full read on the cold start, then at most one conditional read per
    # conversation (the benchmark's conversations are minutes apart, as a family's are).
    for conversation in calls["warm"].values():
        s3 = [step["call"] for step in conversation["calls"] if step["call"].startswith("S3")]
        assert s3 in ([], ["S3 GetObject"]), s3


def test_cold_start_probes_let_python_write_pyc_files(monkeypatch):
    # Any value of PYTHONDONTWRITEBYTECODE, "0" too, stops .pyc files being written, and
    # every measured import would then compile our modules again.
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = cold_start._env("consumers")
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPATH"].split(":")[0].endswith("consumers")


def test_direct_imports_are_the_depth_one_lines_before_the_handler():
    rows = [  # (self µs, cumulative µs, depth, module) in importtime's order
        (5, 5, 1, "encodings"),
        (7, 20, 0, "site"),
        (30, 30, 2, "botocore.config"),
        (10, 40, 1, "hotline_core.runtime.consumer"),
        (4, 4, 1, "hotline_core.telling"),
        (1, 45, 0, "tell_caller"),
    ]
    assert cold_start.direct_imports(rows, "tell_caller") == [
        (40, "hotline_core.runtime.consumer"),
        (4, "hotline_core.telling"),
    ]
    assert cold_start.direct_imports(rows, "answer_link") == []


def test_time_to_healthy_reports_every_run_and_why_one_failed(monkeypatch):
    from hotline_tools.local.process import NotHealthy
    from scripts import time_to_healthy

    results = iter([1.0, NotHealthy("exited with 1"), 3.0])

    def one_run(limit: float = 60.0) -> float:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(time_to_healthy, "one_run", one_run)
    assert time_to_healthy.measure(3) == {
        "runs": [1.0, 3.0],
        "median": 2.0,
        "problems": ["exited with 1"],
    }


def _cold_result(boto3_imported_by: list[str]) -> dict:
    boto3 = next(a for a in cold_start.AVOIDABLE if a["module"] == "boto3")
    return {
        "runs": 10,
        "extra_runs": 5,
        "boto3": 0.100,
        "floor": {"median": 0.160, "ratio": 1.6},
        "handlers": {"tell_caller": {"median": 0.180, "ratio": 1.8, "above_floor": 0.020}},
        "worst": "tell_caller",
        "target_met": False,
        "avoidable": [
            {
                **boto3,
                "cost": 0.016,
                "imported_by": boto3_imported_by,
                "avoided": not boto3_imported_by,
            }
        ],
        "event_schemas": 0.005,
        "events_deferred": True,
        "tracer": {"import": 0.0, "init": 0.030, "xray_loaded": True},
        "total_us": 200_000,
        "by_package": [("botocore", 50_000)],
        "heaviest_self": [(9_000, 9_000, 1, "pydantic_core.core_schema")],
        "direct": [(40_000, "hotline_core.runtime.consumer")],
    }


def test_the_cold_start_report_says_what_was_done_only_when_it_was():
    avoided = cold_start.render(_cold_result([]))
    row = next(line for line in avoided.splitlines() if line.startswith("| boto3 on top"))
    assert "| +16 ms | none: clients are made with botocore" in row
    still = cold_start.render(_cold_result(["tell_caller"]))
    row = next(line for line in still.splitlines() if line.startswith("| boto3 on top"))
    assert "| `tell_caller` | make the clients with botocore" in row
    # The floor leaves no room for our code under the target, and the report says so.
    assert "**Not met.** The floor alone is 1.60× bare `import boto3`" in still
    assert "-10 ms for all of our own code" in still


def test_the_first_call_cold_start_really_runs_each_function_and_the_original():
    # One round (after the warm-up one): fresh interpreters against a moto server. Structure
    # and answers only; no timing is asserted.
    r = first_call.measure(1)
    s = r["subjects"]
    assert set(s) == {"call_request", "benefit_request", "original_a", "original_b", "boto3"}
    for key in ("call_request", "benefit_request", "original_a", "original_b"):
        assert set(s[key]["figures"]) >= {"import_wall", "first_wall", "total_wall", "total_cpu"}
        assert s[key]["figures"]["total_wall"]["median"] > 0
    assert set(s["boto3"]["figures"]) >= {"import_wall", "total_wall"}
    # The original really served the call, as published: boto3 and its answer.
    original = s["original_a"]["answers"][0]
    assert original["statusCode"] == 200
    assert original["caller_name"] == "タクミ"
    assert s["original_a"]["boto3_loaded"]
    assert s["original_b"]["answers"][0] == {"statusCode": 200}  # stored, queued, texted
    assert r["original_a_then_b"]["total_wall"]["median"] > 0
    # Hotline's functions served a first call (a new request; a member found), without boto3.
    assert s["call_request"]["answers"][0]["registered"] == "true"
    assert "ミズキ" in s["call_request"]["answers"][0]["prompt"]
    assert s["benefit_request"]["answers"][0] == {"memberId": first_call.MEMBER_ID}
    assert not s["call_request"]["boto3_loaded"]
    text = first_call.render(r)
    assert "## 4a. Cold start" in text
    assert '"caller_name": "タクミ"' in text


def test_the_memory_model_is_cpu_stretched_by_the_share_and_waiting_unchanged():
    # 0.3 s of CPU and 0.1 s of waiting: a whole vCPU at 1769 MB and above, a quarter below.
    assert first_call.modelled_init(0.3, 0.4, 1769) == 0.4
    assert first_call.modelled_init(0.3, 0.4, 3008) == 0.4
    assert abs(first_call.modelled_init(0.3, 0.4, 1769 // 4) - 1.3) < 0.01
    # 300 one-second calls at 1 GB: 300 GB-s and 300 requests, well under a cent.
    cost = first_call.monthly_cost(1.0, 1024)
    assert abs(cost - (300 * first_call.USD_PER_GB_SECOND + 300 * 0.2 / 1e6)) < 1e-12
    assert cost < 0.01
