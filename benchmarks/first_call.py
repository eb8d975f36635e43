"""Cold start, whole: what a caller waits on when Lambda starts a fresh container. Each sample
is a fresh interpreter that imports the handler, and serves its first invocation (the
handler makes its clients then) with the repo's Connect event, AWS being a moto server on
127.0.0.1; beside it, in the same rounds, the original design's Lambda A
(`../shared/reference/original/hotline/a_identify_caller.py`, run as published) serving the
same call, and a bare `import boto3`.

Why a moto server and not `mock_aws` inside each sample: importing moto imports boto3 and
botocore (and patches botocore's handlers), so the sample's clock would start with the very
modules whose import it is meant to time already loaded; with a server, the sample process
holds nothing but the code under test, and its calls cross a socket as they do on Lambda.
The server is started once by the benchmark (in this process, on a free port), the stack is
provisioned from template.yaml against it (hotline_tools.local.provision) with the
directory, a member and the original's `phonenumber.json`, all before any sample; between
samples the tables the handlers write are emptied, untimed, so every sample takes the same
path (a new request, not a repeat)."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.common import FAKE_AWS, MIZUKI, REGION, ROOT, TAKUMI, median, table

ORIGINAL = ROOT.parent / "shared" / "reference" / "original" / "hotline"
EVENT = ROOT / "tests" / "events" / "connect-contact-flow-event.json"
DIRECTORY = ROOT / "examples" / "phonenumber.json"
MEMBER_ID = "901"
PROVISIONED = (
    "AWS::Serverless::HttpApi",
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::Events::EventBus",
    "AWS::SecretsManager::Secret",
)

# (label, the function in template.yaml or None, code directory, module, handler attribute,
# Details.Parameters of the event)
SUBJECTS: dict[str, dict[str, Any]] = {
    "call_request": {
        "label": "Hotline `CallRequestFunction` (producers/call_request.py)",
        "function": "CallRequestFunction",
        "code": ROOT / "producers",
        "module": "call_request",
        "handler": "handler",
        "parameters": {},
    },
    "benefit_request": {
        "label": "Hotline `BenefitRequestFunction` (producers/benefit_request.py, `getMemberId`)",
        "function": "BenefitRequestFunction",
        "code": ROOT / "producers",
        "module": "benefit_request",
        "handler": "handler",
        "parameters": {"cmd": "getMemberId"},
    },
    "original_a": {
        "label": "original design's Lambda A (a_identify_caller.py, as published)",
        "function": None,
        "code": ORIGINAL,
        "module": "a_identify_caller",
        "handler": "lambda_handler",
        "parameters": {},
    },
    "original_b": {
        "label": "original design's Lambda B (b_ask_receiver.py, as published)",
        "function": None,
        "code": ORIGINAL,
        "module": "b_ask_receiver",
        "handler": "lambda_handler",
        "parameters": {},
        # What the flow passed B: A's answer, as contact attributes.
        "attributes": {
            "caller_name": "タクミ",
            "caller_phone": TAKUMI,
            "reciever_name": "ミズキ",
            "reciever_phone": MIZUKI,
        },
    },
    "boto3": {
        "label": "bare `import boto3`",
        "function": None,
        "code": None,
        "module": "boto3",
        "handler": None,
        "parameters": {},
    },
}
# The probe importing nothing new: what the instruction counts leave out.
BASELINE = {"code": None, "function": None, "module": "sys", "handler": None, "parameters": {}}

# Runs in a fresh interpreter. Times (wall: perf_counter; CPU: process_time, this process
# only, so not moto's) the import, then the first invocation, then a second one (warm).
PROBE = """
import importlib, json, sys, time, uuid
module, attr, event_path, params, attributes, warm, budget = sys.argv[1:8]
event = json.load(open(event_path, encoding="utf-8"))
event["Details"]["Parameters"] = json.loads(params)
event["Details"]["ContactData"]["Attributes"] = json.loads(attributes)

class Context:
    function_name = "bench"
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:bench"
    memory_limit_in_mb = 1024
    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + float(budget)
    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - w, time.process_time() - c

out = {}
mod, out["import_wall"], out["import_cpu"] = timed(lambda: importlib.import_module(module))
if attr != "-":
    handler = getattr(mod, attr)
    def call():
        event["Details"]["ContactData"]["ContactId"] = str(uuid.uuid4())
        return handler(event, Context())
    out["answer"], out["first_wall"], out["first_cpu"] = timed(call)
    if warm == "1":
        out["second_answer"], out["warm_wall"], out["warm_cpu"] = timed(call)
    out["boto3_loaded"] = "boto3" in sys.modules
sys.stdout.write("\\n" + json.dumps(out) + "\\n")
"""


class Server:
    """A moto server on 127.0.0.1 with the stack provisioned and its data in place."""

    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.environments: dict[str, dict[str, str]] = {}
        self._provision()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)

    def _provision(self) -> None:
        from hotline_tools.local.provision import _create
        from hotline_tools.local.template import Template

        template = Template(ROOT / "template.yaml")
        refs: dict[str, Any] = {}
        # Just what the two functions' environments name: the tables, the bucket, the bus,
        # the API (its id goes into the link), the PIN key's secret.
        for logical_id, resource in template.resources.items():
            kind = resource["Type"]
            if kind not in PROVISIONED or not template.active(logical_id):
                continue
            if kind == "AWS::Serverless::HttpApi":  # only its id is used (the link)
                refs[logical_id] = _create(kind, logical_id, {}, template.stack_name, self.client)
                continue
            props = template.resolve(resource.get("Properties", {}), refs)
            if kind == "AWS::SecretsManager::Secret":
                arn = self.client("secretsmanager").create_secret(
                    Name=f"{template.stack_name}-{logical_id}", SecretString="k" * 48
                )["ARN"]
                refs[logical_id] = {"Ref": arn, "Arn": arn}
            else:
                refs[logical_id] = _create(
                    kind, logical_id, props, template.stack_name, self.client
                )
        self.memory = {
            name: int(template.resources[name]["Properties"].get("MemorySize", 0))
            or int(template.doc["Globals"]["Function"]["MemorySize"])
            for name in ("CallRequestFunction", "BenefitRequestFunction")
        }
        for fn in template.functions():
            if fn.logical_id in ("CallRequestFunction", "BenefitRequestFunction"):
                self.environments[fn.logical_id] = {
                    k: "" if v is None else str(v)
                    for k, v in template.resolve(fn.raw_environment, refs).items()
                }
        env = self.environments
        self.bucket = env["CallRequestFunction"]["DIRECTORY_BUCKET"]
        # One phonenumber.json serves both: the original's format is Hotline's too.
        self.client("s3").put_object(
            Bucket=self.bucket, Key="phonenumber.json", Body=DIRECTORY.read_bytes()
        )
        self.members = env["BenefitRequestFunction"]["MEMBERS_TABLE_NAME"]
        # The original's table and queue, as its play.py makes them.
        self.client("dynamodb").create_table(
            TableName="hotline-contact",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "contact_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "contact_id", "AttributeType": "S"}],
        )
        queue = self.client("sqs").create_queue(QueueName="hotline-sqs")["QueueUrl"]
        self.original_env = {
            "bucket": self.bucket,
            "dynamo_table": "hotline-contact",
            "sqs_url": queue,
            "apigw_url": "https://abcdefghij.execute-api.ap-northeast-1.amazonaws.com",
        }
        self.reset()

    def reset(self) -> None:
        """Empty every table (untimed), then put the member back: each sample a first call."""
        db = self.client("dynamodb")
        for name in db.list_tables()["TableNames"]:
            keys = [
                k["AttributeName"] for k in db.describe_table(TableName=name)["Table"]["KeySchema"]
            ]
            for item in db.scan(TableName=name).get("Items", []):
                db.delete_item(TableName=name, Key={k: item[k] for k in keys})
        db.put_item(
            TableName=self.members,
            Item={"phone": {"S": TAKUMI}, "member_id": {"S": MEMBER_ID}},
        )

    def stop(self) -> None:
        self._server.stop()


def _env(server: Server, subject: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(FAKE_AWS, AWS_ENDPOINT_URL=server.endpoint)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # .pyc files are written by the warm-up round
    code = subject["code"]
    if subject["function"]:
        env.update(server.environments[subject["function"]])
        env["AWS_LAMBDA_FUNCTION_NAME"] = subject["function"]
        # Lambda's sys.path: the function's code, then the layer (core/).
        env["PYTHONPATH"] = os.pathsep.join([str(code), str(ROOT / "core")])
    elif code is not None:  # the original: its code alone, its env as play.py sets it
        env.update(server.original_env)
        env["PYTHONPATH"] = str(code)
    else:
        env["PYTHONPATH"] = ""
    if code is not None:
        env["LAMBDA_TASK_ROOT"] = str(code)
    return env


def sample(server: Server, key: str, valgrind: bool = False) -> dict[str, Any]:
    """One fresh interpreter: import, first invocation, second invocation. JSON out. With
    `valgrind`, under callgrind, for the process's instruction count (no second call, and a
    600 s invocation budget: the handler runs ~50 times slower)."""
    s = SUBJECTS.get(key, BASELINE)
    prefix = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] if valgrind else []
    out = subprocess.run(  # noqa: S603 - our own interpreter
        [
            *prefix,
            sys.executable,
            "-c",
            PROBE,
            s["module"],
            s["handler"] or "-",
            str(EVENT),
            json.dumps(s["parameters"]),
            json.dumps(s.get("attributes", {})),
            "0" if valgrind else "1",
            "600" if valgrind else "6",
        ],
        cwd=s["code"] or ROOT,
        env=_env(server, s),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if out.returncode:
        raise RuntimeError(f"{key} failed:\n{out.stderr[-3000:]}")
    got = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    if valgrind:
        got["instructions"] = int(re.findall(r"Collected : (\d+)", out.stderr)[-1])
    got["total_wall"] = got["import_wall"] + got.get("first_wall", 0.0)
    got["total_cpu"] = got["import_cpu"] + got.get("first_cpu", 0.0)
    return got


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": median(values),
        "min": min(values),
        "max": max(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


FIGURES = (
    "import_wall",
    "first_wall",
    "total_wall",
    "import_cpu",
    "first_cpu",
    "total_cpu",
    "warm_wall",
)


def instructions(server: Server) -> dict[str, int]:
    """Instructions (callgrind's Ir) of one sample of each subject, less those of the probe
    importing nothing (interpreter start-up and the probe's own imports)."""
    base = sample(server, "baseline", valgrind=True)["instructions"]
    counts = {}
    for key in SUBJECTS:
        counts[key] = sample(server, key, valgrind=True)["instructions"] - base
        server.reset()
    return counts


def measure(runs: int = 10, count_instructions: bool = False) -> dict[str, Any]:
    server = Server()
    try:
        for key in SUBJECTS:  # warm-up: .pyc files written, OS file cache filled
            sample(server, key)
            server.reset()
        samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for _ in range(runs):  # interleaved rounds: a busy moment hits every subject alike
            for key in SUBJECTS:
                samples[key].append(sample(server, key))
                server.reset()
        counted = instructions(server) if count_instructions and shutil.which("valgrind") else {}
    finally:
        server.stop()
    result: dict[str, Any] = {
        "runs": runs,
        "subjects": {},
        "memory": server.memory,
        "instructions": counted,
    }
    for key, got in samples.items():
        figures = {f: _spread([g[f] for g in got]) for f in FIGURES if all(f in g for g in got)}
        result["subjects"][key] = {
            "figures": figures,
            "answers": [g.get("answer") for g in got],
            "boto3_loaded": any(g.get("boto3_loaded") for g in got),
        }
    boto3 = result["subjects"]["boto3"]["figures"]["import_wall"]["median"]
    for r in result["subjects"].values():
        r["ratio"] = r["figures"]["total_wall"]["median"] / boto3
    # The original's flow invoked A, then B, each in its own container: on a cold call the
    # caller waited on both. Summed sample by sample (round i's A + round i's B).
    both = {
        f: [a[f] + b[f] for a, b in zip(samples["original_a"], samples["original_b"], strict=True)]
        for f in ("total_wall", "total_cpu")
    }
    result["original_a_then_b"] = {f: _spread(v) for f, v in both.items()}
    result["original_a_then_b"]["ratio"] = median(both["total_wall"]) / boto3
    return result


# Lambda's CPU share grows with memory: one vCPU's worth at 1,769 MB ("At 1,769 MB, a function
# has the equivalent of one vCPU (one vCPU-second of credits per second)",
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). The sizes the model
# prices, and the price it uses.
FULL_VCPU_MB = 1769
MEMORY_DOCS = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html"
SIZES_MB = (128, 256, 512, 1024, 1769, 3008)
CALLS_A_MONTH = 300
# arm64, per GB-second and per request: the us-east-1 list price (other regions differ by a
# few per cent); the free tier (400,000 GB-s, 1M requests a month) would cover it all anyway.
USD_PER_GB_SECOND = 0.0000133334
USD_PER_REQUEST = 0.20 / 1_000_000


def modelled_init(cpu: float, wall: float, memory_mb: int) -> float:
    """A model, not a measurement: this machine's CPU seconds stretched by Lambda's CPU share
    at `memory_mb` (one core at full speed = 1; Python's import and first call use one
    thread, so more than one vCPU buys nothing), plus the time spent waiting (wall - CPU:
    the calls to moto over loopback, file reads), unchanged."""
    share = min(1.0, memory_mb / FULL_VCPU_MB)
    return cpu / share + max(0.0, wall - cpu)


def monthly_cost(seconds_per_call: float, memory_mb: int) -> float:
    """Every one of CALLS_A_MONTH calls billed as a cold one (the worst case), at memory_mb."""
    gb_seconds = CALLS_A_MONTH * seconds_per_call * memory_mb / 1024
    return gb_seconds * USD_PER_GB_SECOND + CALLS_A_MONTH * USD_PER_REQUEST


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _instructions(n: int | None) -> str:
    return "—" if n is None else f"{n / 1e9:.2f} G"


def _cell(f: dict[str, float]) -> str:
    return f"{_ms(f['median'])} ({_ms(f['min'])}–{_ms(f['max'])})"


def render(r: dict[str, Any]) -> str:
    subjects = r["subjects"]
    boto3 = subjects["boto3"]["figures"]["import_wall"]["median"]
    rows = []
    for key, s in subjects.items():
        f = s["figures"]
        rows.append(
            [
                SUBJECTS[key]["label"],
                _cell(f["import_wall"]),
                _cell(f["first_wall"]) if "first_wall" in f else "—",
                f"**{_cell(f['total_wall'])}**",
                f"{s['ratio']:.2f}",
                f"{_ms(f['total_cpu']['median'])}",
                _ms(f["warm_wall"]["median"]) if "warm_wall" in f else "—",
                _instructions(r["instructions"].get(key)),
            ]
        )
    ab = r["original_a_then_b"]
    rows.insert(
        -1,
        [
            "original design, A then B (the caller waited on both; summed round by round)",
            "—",
            "—",
            f"**{_cell(ab['total_wall'])}**",
            f"{ab['ratio']:.2f}",
            _ms(ab["total_cpu"]["median"]),
            "—",
            _instructions(
                r["instructions"]["original_a"] + r["instructions"]["original_b"]
                if r["instructions"]
                else None
            ),
        ],
    )
    original = subjects["original_a"]
    answer = original["answers"][-1] or {}
    model_rows = []
    for key in ("call_request", "benefit_request", "original_a", "original_b"):
        f = subjects[key]["figures"]
        cpu, wall = f["total_cpu"]["median"], f["total_wall"]["median"]
        cells = [SUBJECTS[key]["label"].split(" (")[0]]
        for size in SIZES_MB:
            cells.append(_ms(modelled_init(cpu, wall, size)))
        model_rows.append(cells)
    cpu, wall = ab["total_cpu"]["median"], ab["total_wall"]["median"]
    model_rows.append(
        ["original design, A then B", *(_ms(modelled_init(cpu, wall, m)) for m in SIZES_MB)]
    )
    cost_rows = []
    memory = r["memory"]["CallRequestFunction"]
    f = subjects["call_request"]["figures"]
    for size in SIZES_MB:
        seconds = modelled_init(f["total_cpu"]["median"], f["total_wall"]["median"], size)
        cost_rows.append(
            [
                f"{size} MB" + (" (template.yaml)" if size == memory else ""),
                f"{min(1.0, size / FULL_VCPU_MB):.2f}",
                _ms(seconds),
                f"USD {monthly_cost(seconds, size):.4f}",
            ]
        )
    return "\n".join(
        [
            "## 4a. Cold start: a fresh container's first call",
            "",
            "What a caller waits on when Lambda starts a new container for the Connect-facing "
            "functions: importing the handler, then its first invocation (the handler makes "
            "its clients, reads the directory, writes and publishes) with the repo's Connect "
            "event (`tests/events/connect-contact-flow-event.json`, a fresh `ContactId` each "
            "time). Beside them, **in the same rounds**, the original design's two "
            "Connect-facing Lambdas serving the same call, run as published from "
            "`../shared/reference/original/hotline/`: A (`a_identify_caller.py`: boto3 "
            "resource, `phonenumber.json` read from the bucket in env `bucket`) and B "
            "(`b_ask_receiver.py`, given A's answer as contact attributes: DynamoDB put, SQS "
            "send, SNS text to the receiver; env as its `play.py` sets it); and a bare "
            "`import boto3`.",
            "",
            f"How: each figure is the median (min–max) of {r['runs']} samples, each a fresh "
            f"interpreter (`{Path(sys.executable).name} -c`), interleaved round by round, "
            "after one unmeasured warm-up round (`.pyc` files, OS file cache); wall time by "
            "`time.perf_counter()`, CPU by `time.process_time()` (the sample's own process). "
            "AWS is a moto server on 127.0.0.1 started once by the benchmark, the handlers "
            "reaching it through `AWS_ENDPOINT_URL`; the tables, bucket (directory "
            "`examples/phonenumber.json`, the original's format too), bus and PIN key secret "
            "are created from template.yaml's definitions and each function gets its "
            "template environment, all before any sample; the tables are emptied between "
            "samples (untimed) so each takes the same path. Not `mock_aws` inside the sample: "
            "importing moto loads boto3 and botocore first, which is what is being timed. "
            "Interpreter start-up is not included (the same for all, and Lambda's runtime "
            "start is its own). "
            + (
                "*Instructions*: one more sample of each under valgrind's callgrind (the whole "
                "process's instructions, less those of the same probe importing nothing, so "
                "without interpreter start-up): a count that does not move with the machine's "
                "load, as the milliseconds do."
                if r["instructions"]
                else "Instruction counts (valgrind) were not taken in this run."
            ),
            "",
            table(
                [
                    "function",
                    "import",
                    "first invocation",
                    "cold start (import + first)",
                    "÷ bare `import boto3`",
                    "CPU (median)",
                    "second call (warm)",
                    "instructions (callgrind, 1 sample)",
                ],
                rows,
            ),
            "",
            f"Bare `import boto3`: {_ms(boto3)}. The original was really run: its first "
            f"answer was `{json.dumps(answer, ensure_ascii=False)}`. Hotline's "
            "`CallRequestFunction` does in one invocation what the original's flow needed A "
            "and B for (look the caller up, store the request; it publishes `CallRequested` "
            "where B sent the SQS message and the SMS itself), so its row compares with "
            '"A then B": on a cold call the original\'s caller waited on two cold starts, '
            "one after the other. `CallRequestFunction`'s second call is a repeat of the "
            'first ("still waiting"), the warm path with one fewer write. '
            "These are this machine's milliseconds against a local moto, not Lambda's: "
            "compare the rows with one another.",
            "",
            "**Memory for the Connect-facing functions: a model.** Lambda gives a function CPU "
            f"in proportion to its memory, one vCPU's worth at {FULL_VCPU_MB} MB "
            f"([AWS Lambda docs]({MEMORY_DOCS})); "
            "this machine cannot measure Lambda's CPU share. The model: the CPU seconds "
            "measured above, divided by the share at each size (capped at one vCPU: the import "
            "and first call run on one thread), plus the measured waiting (wall − CPU), "
            "unchanged. It assumes this machine's core is as fast as a Lambda arm64 core and "
            "that init is not given extra CPU; both unverified.",
            "",
            table(["function", *(f"{s} MB" for s in SIZES_MB)], model_rows),
            "",
            f"What it costs, `CallRequestFunction` at {CALLS_A_MONTH} calls a month, every "
            "one billed as a cold start of the modelled length (the worst case), at "
            f"USD {USD_PER_GB_SECOND:.10f} per GB-second (arm64 list price, us-east-1) and "
            "USD 0.20 per million requests, before the free tier (which covers it all):",
            "",
            table(["memory", "vCPU share", "modelled cold start", "a month"], cost_rows),
            "",
            "template.yaml gives "
            + ", ".join(f"`{name}` {mb} MB" for name, mb in r["memory"].items())
            + (
                ": the smallest size with a whole vCPU, so (by the model) the shortest init a "
                "single-threaded Python gets; more memory buys it nothing, and the cost stays "
                "well under a cent a month. The other functions keep the Globals' size: "
                "nobody is on the line while they start."
                if set(r["memory"].values()) == {FULL_VCPU_MB}
                else "."
            ),
            "",
        ]
    )
