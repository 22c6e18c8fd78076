"""Identity from Klaviyo profiles, end to end: the real binary, the Klaviyo API test double
(recorded JSON:API shapes), the local lake read with DuckDB."""

import json

from conftest import WRITE_KEY, KlaviyoApiDouble, LocalEndpoint, webhook_for_profiles
from query_lake import connect
from send_sample_webhook import post_webhook

OWN = "01GDDKASAP8TKDDA2GRZDSVP4H"          # email and external_id crm-10045
EMAIL_ONLY = "01HB7Q9M4X3K2N8W5V6T1R0Y9Z"   # email, no external_id
ID_ONLY = "01HC2R8P5Y4L3M9X6W7U2S1Z0A"      # external_id crm-20077, no email
UNKNOWN = "01HZZZZZZZZZZZZZZZZZZZZZZZ"      # not in Klaviyo


def start(tmp_path, klaviyo_api, **env):
    settings = {"KLAVIYO_API_KEY": KlaviyoApiDouble.API_KEY, "KLAVIYO_API_BASE_URL": klaviyo_api.url,
                "EMIT_METRICS": "true", **env}
    return LocalEndpoint(tmp_path / "lake", ["--write-key", WRITE_KEY], env=settings)


def identities(endpoint):
    """profile id -> (user_id, anonymous_id, context_traits_email, identity_resolved).
    A column no row has (no email known at all) reads as None."""
    result = connect(endpoint.lake).sql("select * from email_opened order by id")
    rows = [dict(zip(result.columns, row)) for row in result.fetchall()]
    return {r["context_klaviyo_profile_id"]: (r["user_id"], r["anonymous_id"], r.get("context_traits_email"),
                                              r["context_klaviyo_identity_resolved"]) for r in rows}


def test_profiles_are_looked_up_in_one_call_and_cached(tmp_path, klaviyo_api):
    endpoint = start(tmp_path, klaviyo_api)
    body = webhook_for_profiles([OWN, EMAIL_ONLY, ID_ONLY, UNKNOWN, OWN], "idOne")
    status, answer = post_webhook(endpoint.webhook_url, body, WRITE_KEY)
    assert (status, answer["accepted"]) == (200, 5), answer
    stats = klaviyo_api.stats()
    assert stats["calls"] == 1, stats
    assert sorted(stats["requests"][0]) == sorted({OWN, EMAIL_ONLY, ID_ONLY, UNKNOWN})
    assert identities(endpoint) == {
        OWN: ("crm-10045", None, "sarah.mason@klaviyo-demo.com", True),
        EMAIL_ONLY: (None, "li.wei@example.com", "li.wei@example.com", True),
        ID_ONLY: ("crm-20077", None, None, True),
        UNKNOWN: (None, UNKNOWN, None, False),
    }
    assert post_webhook(endpoint.webhook_url, webhook_for_profiles([OWN, EMAIL_ONLY, UNKNOWN], "idTwo"),
                        WRITE_KEY)[0] == 200
    assert klaviyo_api.stats()["calls"] == 1, "answered from the cache, unknown profiles too"
    endpoint.stop()


def test_only_own_profiles_skips_and_counts_the_others(tmp_path, klaviyo_api):
    endpoint = start(tmp_path, klaviyo_api, ONLY_OWN_PROFILES="true")
    body = webhook_for_profiles([OWN, EMAIL_ONLY, ID_ONLY, UNKNOWN], "idOwn")
    status, answer = post_webhook(endpoint.webhook_url, body, WRITE_KEY)
    assert (status, answer["accepted"], answer["skipped"]) == (200, 3, 1), answer
    assert set(identities(endpoint)) == {OWN, ID_ONLY, UNKNOWN}
    endpoint.stop()
    metrics = [json.loads(line) for line in endpoint.process.stdout.read().splitlines() if line.startswith("{")]
    assert [m["EventsSkipped"] for m in metrics if "EventsSkipped" in m] == [1]
    assert "li.wei" not in endpoint.process.stderr.read(), "no email address in the logs"


def test_a_429_is_waited_out_when_retry_after_fits_the_budget(tmp_path, klaviyo_api):
    klaviyo_api.post("/__control", {"fail": [{"status": 429, "retry_after": 1}]})
    endpoint = start(tmp_path, klaviyo_api, PROFILE_LOOKUP_TIMEOUT_MS="3000")
    status, _ = post_webhook(endpoint.webhook_url, webhook_for_profiles([OWN], "id429"), WRITE_KEY)
    assert status == 200
    assert klaviyo_api.stats()["calls"] == 2
    assert identities(endpoint)[OWN][0] == "crm-10045"
    endpoint.stop()


def test_a_long_retry_after_falls_back_within_the_budget(tmp_path, klaviyo_api):
    klaviyo_api.post("/__control", {"fail": [{"status": 429, "retry_after": 30}]})
    endpoint = start(tmp_path, klaviyo_api, PROFILE_LOOKUP_TIMEOUT_MS="500")
    status, answer = post_webhook(endpoint.webhook_url, webhook_for_profiles([OWN], "id429long"), WRITE_KEY)
    assert (status, answer["accepted"]) == (200, 1)
    # Had the lookup waited out the 30 s Retry-After, the retry would have found the profile:
    # the unresolved identity shows the budget cut it off (no stopwatch needed; the Rust tests
    # check the budget on a paused clock).
    assert identities(endpoint)[OWN] == (None, OWN, None, False)
    endpoint.stop()


def test_server_errors_are_retried_once_then_fall_back(tmp_path, klaviyo_api):
    klaviyo_api.post("/__control", {"fail": [{"status": 503}]})
    endpoint = start(tmp_path, klaviyo_api)
    assert post_webhook(endpoint.webhook_url, webhook_for_profiles([OWN], "id5xxOnce"), WRITE_KEY)[0] == 200
    assert identities(endpoint)[OWN][0] == "crm-10045"
    klaviyo_api.post("/__control", {"fail": [{"status": 500}] * 5})
    assert post_webhook(endpoint.webhook_url, webhook_for_profiles([EMAIL_ONLY], "id5xxAll"), WRITE_KEY)[0] == 200
    assert identities(endpoint)[EMAIL_ONLY] == (None, EMAIL_ONLY, None, False)
    endpoint.stop()


def test_a_slow_klaviyo_never_delays_ingestion_past_the_budget(tmp_path, klaviyo_api):
    klaviyo_api.post("/__control", {"delay": 5})
    endpoint = start(tmp_path, klaviyo_api, PROFILE_LOOKUP_TIMEOUT_MS="400")
    status, _ = post_webhook(endpoint.webhook_url, webhook_for_profiles([OWN], "idSlow"), WRITE_KEY)
    assert status == 200
    # The double answers (with the profile) only after 5 s: unresolved means the 0.4 s
    # budget cut the lookup off.
    assert identities(endpoint)[OWN][3] is False
    endpoint.stop()


def test_pages_are_followed(tmp_path, klaviyo_api):
    klaviyo_api.post("/__control", {"max_page_size": 2})
    endpoint = start(tmp_path, klaviyo_api)
    body = webhook_for_profiles([OWN, EMAIL_ONLY, ID_ONLY], "idPages")
    assert post_webhook(endpoint.webhook_url, body, WRITE_KEY)[0] == 200
    assert klaviyo_api.stats()["calls"] == 2
    assert {k: v[3] for k, v in identities(endpoint).items()} == {OWN: True, EMAIL_ONLY: True, ID_ONLY: True}
    endpoint.stop()


def test_only_own_profiles_without_an_api_key_fails_the_start(tmp_path):
    import subprocess
    from conftest import ingest_binary
    result = subprocess.run([str(ingest_binary()), "serve", "--listen", "127.0.0.1:0", "--lake", str(tmp_path),
                             "--write-key", WRITE_KEY], env={"ONLY_OWN_PROFILES": "true", "PATH": "/usr/bin"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "ONLY_OWN_PROFILES needs a Klaviyo API key" in result.stderr
