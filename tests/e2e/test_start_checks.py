"""Cold-start checks and key separation against the emulated stack."""

import pytest
from conftest import SEGMENT_KEY, WRITE_KEY, LocalEndpoint, post_segment, webhook_body
from send_sample_webhook import post_webhook


@pytest.fixture
def stack(emulator):
    emulator.clear()
    yield emulator
    emulator.clear()


def test_a_stream_that_does_not_exist_fails_the_start_with_a_clear_error(stack):
    with pytest.raises(RuntimeError) as failure:
        LocalEndpoint(None, env=stack.env(DELIVERY_STREAM_NAME="klaviyo-source-typo"))
    message = str(failure.value)
    assert 'delivery stream "klaviyo-source-typo" does not exist' in message, message


def test_an_unreachable_dead_letter_bucket_is_reported_at_start(stack):
    endpoint = LocalEndpoint(None, env=stack.env(DEAD_LETTER_BUCKET="no-such-dead-letter-bucket"))
    logs = endpoint.logs()
    assert "the dead-letter prefix is not reachable" in logs, logs


def test_segment_calls_take_only_the_segment_keys_from_the_secret(stack):
    endpoint = LocalEndpoint(None, env=stack.env())
    batch = {"batch": [{"type": "track", "event": "Email Opened", "userId": "u1",
                        "originalTimestamp": "2024-01-04T18:04:00Z"}]}
    assert post_segment(endpoint.base_url, "/v1/batch", batch, WRITE_KEY)[0] == 401
    assert post_segment(endpoint.base_url, "/v1/batch", batch, SEGMENT_KEY)[0] == 200
    # ... and the Segment key signs no webhook.
    assert post_webhook(endpoint.webhook_url, webhook_body(1, "keys"), SEGMENT_KEY)[0] == 401
    endpoint.stop()
