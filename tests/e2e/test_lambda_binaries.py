"""The binary the stack deploys (`endpoint`), run as Lambda runs it: started with
`AWS_LAMBDA_RUNTIME_API` pointing at a stand-in of the Runtime API
(tests/lambda_runtime/runtime_api.py), its region and credentials only in the variables the
Lambda runtime sets, and the emulated stack (moto) behind `AWS_ENDPOINT_URL`. The other
tests run the same router through `klaviyo-source serve`; these hold the Lambda start-up and its
own AWS configuration to what AWS documents."""

import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, WRITE_KEY, ingest_binary, webhook_body
from send_sample_webhook import http_date, sign

sys.path.insert(0, str(ROOT / "tests/lambda_runtime"))
sys.path.insert(0, str(ROOT / "tests/fixtures/apigw"))
from make_events import event as api_gateway_event  # noqa: E402
from runtime_api import RuntimeApi  # noqa: E402


def lambda_binary() -> Path:
    """`endpoint`, built beside the `klaviyo-source` that INGEST_BIN names."""
    return ingest_binary().parent / "endpoint"


def invoke(env: dict, event: dict, timeout: float = 60):
    """Starts the binary under the Runtime API stand-in, hands it `event`; the stand-in (with
    the answer or error it got) and the process's stderr once it answered or exited."""
    api = RuntimeApi(event)
    process = subprocess.Popen([str(lambda_binary())], env={**env, "AWS_LAMBDA_RUNTIME_API": api.address},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while api.response is None and api.error is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if process.poll() is None:
        process.kill()
    stderr = process.communicate()[1].decode(errors="replace")
    api.shutdown()
    return api, process.returncode, stderr


def signed_event(body: bytes, gateway_received_s_ago: float = 0.0) -> dict:
    event = api_gateway_event(body, encode=False, signed=False)
    # API Gateway stamps the request when it receives it (payload 2.0); its 30 s timeout runs
    # from there.
    event["requestContext"]["timeEpoch"] = int((time.time() - gateway_received_s_ago) * 1000)
    timestamp = http_date(time.time())
    event["headers"].update({"klaviyo-webhook-id": json.loads(body)["meta"]["klaviyo_webhook_id"],
                             "klaviyo-timestamp": timestamp,
                             "klaviyo-signature": sign(WRITE_KEY, body, timestamp)})
    return event


def test_the_deployed_binary_takes_its_keys_and_aws_configuration_as_lambda_gives_them(emulator):
    emulator.clear()
    env = {"PATH": "/usr/bin:/bin", **emulator.env(), "AWS_LAMBDA_FUNCTION_NAME": "ingest",
           "AWS_LAMBDA_LOG_STREAM_NAME": "stand-in", "AWS_LAMBDA_LOG_GROUP_NAME": "stand-in",
           "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}
    api, _, stderr = invoke(env, signed_event(webhook_body(12, "lambdaBin")))
    assert api.error is None and api.response is not None, stderr[-3000:]
    answer = json.loads(api.response)
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["accepted"] == 12
    keys = emulator.keys("klaviyo/")
    assert len({key.rsplit("/", 1)[0] for key in keys}) == 6, keys
    emulator.clear()


def test_without_the_runtimes_region_variable_the_start_fails_naming_it(emulator):
    env = {"PATH": "/usr/bin:/bin", **emulator.env()}
    del env["AWS_REGION"]
    api, status, stderr = invoke(env, signed_event(webhook_body(1, "noRegion")))
    assert status != 0 and api.response is None
    assert "AWS_REGION is not set" in stderr, stderr[-3000:]


def test_time_api_gateway_spent_before_the_invocation_counts_against_its_30_s(emulator):
    """API Gateway's integration timeout runs from its own receipt (`requestContext.timeEpoch`):
    a request it received 31 s before the invocation began (a long cold start) is past it, so
    the function stores nothing and answers 503 at once instead of delivering after API
    Gateway has already answered the caller with an error."""
    emulator.clear()
    env = {"PATH": "/usr/bin:/bin", **emulator.env(), "AWS_LAMBDA_FUNCTION_NAME": "ingest",
           "AWS_LAMBDA_LOG_STREAM_NAME": "stand-in", "AWS_LAMBDA_LOG_GROUP_NAME": "stand-in",
           "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}
    api, _, stderr = invoke(env, signed_event(webhook_body(12, "lateGateway"), gateway_received_s_ago=31))
    assert api.error is None and api.response is not None, stderr[-3000:]
    answer = json.loads(api.response)
    assert answer["statusCode"] == 503, answer
    assert "error" in json.loads(answer["body"]), answer
    assert emulator.keys("klaviyo/") == []
    emulator.clear()
