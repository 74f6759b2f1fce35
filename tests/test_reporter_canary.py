"""The reporter's follow-up leaks nothing: canaries through session, messages and later evidence.

Extends the end-to-end canary test (tests/test_end_to_end.py, which covers submission) to the
reporter coming back: every request carries canary values in X-Forwarded-For, X-Real-IP,
Forwarded, User-Agent and Accept-Language and comes from a distinctive loopback address; the
reporter's message, a later evidence file and its name carry canaries of their own; the receipt
and the session token are needles too. After the inspector has read the answer, every log line,
every row of every service database, every event and RPC message (bodies and headers) captured
on the broker, every email, every stored object (S3 run) and every file under the data and temp
dirs is searched: no hit anywhere.
"""
import io
import json
import os
import secrets

import pytest
import requests
from requests.adapters import HTTPAdapter

from intake.pow import solve
from tests.fixtures import wait_until
from tests.test_end_to_end import Wiretap, enrol, make_stack, scan_databases, scan_files, sign_in

SOURCE_IP = "127.0.0.93"


class FromAddress(HTTPAdapter):
    """Connect from a chosen loopback address, so the client address is itself a canary."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (SOURCE_IP, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.mark.e2e
@pytest.mark.parametrize("store", ["file", "s3"])
def test_follow_up_leaks_no_reporter_data_anywhere(store, tmp_path, rabbit_uri, pg_database, smtp_sink,
                                                    s3_server, s3_bucket):
    tag = secrets.token_hex(6)
    canary = {
        "ip": f"203.0.113.{secrets.randbelow(250) + 1}",
        "real_ip": f"198.51.100.{secrets.randbelow(250) + 1}",
        "agent": f"KanariFollowUp/{tag}",
        "language": f"kanari-{tag}",
        "message": f"KANARI-PESAN-{tag}",
        "evidence": f"KANARI-BUKTI-SUSULAN-{tag}",
        "filename": f"kanari-nama-{tag}.pdf",
    }
    headers = {"X-Forwarded-For": f"{canary['ip']}, 10.0.0.7", "X-Real-IP": canary["real_ip"],
               "Forwarded": f"for={canary['ip']};proto=https", "User-Agent": canary["agent"],
               "Accept-Language": f"{canary['language']},id;q=0.9"}
    reporter = requests.Session()
    reporter.headers.update(headers)
    reporter.mount("http://", FromAddress())

    stack = make_stack(tmp_path, rabbit_uri, pg_database, smtp_sink, store, s3_server, s3_bucket)
    stack.env["WBS_POW_BITS"] = "8"
    # both log formats are searched: text in the file-store run, JSON lines in the S3 run
    log_format = stack.env["LOG_FORMAT"] = "json" if store == "s3" else "text"
    if log_format == "json":  # as deployed: eventlet's start-up notice is not a log line
        stack.env["PYTHONWARNINGS"] = "ignore:::nameko.cli.commands"
    with stack.start():
        stack.wbs("unit", "add", "kn-itjen", "--name", "Inspektorat Jenderal", "--inspectorate")
        stack.wbs("unit", "add", "kn-dit", "--name", "Direktorat", "--parent", "kn-itjen")
        inspector = enrol(stack, "kn-inspektur", "kn-itjen")
        wiretap = Wiretap(rabbit_uri)
        base = stack.intake_url

        def pow_header():
            challenge = reporter.get(f"{base}/api/v1/pow", timeout=30).json()["challenge"]
            return {"X-WBS-PoW": f"{challenge}:{solve(challenge, 8)}"}

        report = {"unit": "kn-dit", "category": "collusion", "description": "Kolusi dalam pengadaan.",
                  "parties": [{"name": "Pak Z"}], "reporter": {"relationship": "vendor", "involved": False},
                  "good_faith": True}
        submitted = reporter.post(f"{base}/api/v1/reports", json=report, headers=pow_header(), timeout=30)
        assert submitted.status_code == 201, submitted.text
        receipt = submitted.json()["receipt"]

        # sign in (API), read, answer nothing yet
        session = reporter.post(f"{base}/api/v1/reporter/session", json={"receipt": receipt},
                                headers=pow_header(), timeout=30)
        assert session.status_code == 200, session.text
        token = session.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert reporter.get(f"{base}/api/v1/reporter/report", headers=auth, timeout=30).status_code == 200

        # the inspector asks; the reporter reads the question, answers, adds a file
        staff = sign_in(stack, inspector)
        case_id = wait_until(lambda: requests.get(f"{stack.console_url}/api/v1/cases", headers=staff,
                                                  timeout=10).json()["cases"], timeout=30)[0]["case_id"]
        asked = requests.post(f"{stack.console_url}/api/v1/cases/{case_id}/messages", headers=staff,
                              json={"text": "Mohon sebutkan nama perusahaannya.", "visibility": "reporter"}, timeout=10)
        assert asked.status_code == 201, asked.text
        view = wait_until(lambda: [m for m in reporter.get(f"{base}/api/v1/reporter/report", headers=auth,
                                                           timeout=30).json()["messages"] if m["text"]], timeout=30)
        assert view[0]["direction"] == "to_reporter"
        answered = reporter.post(f"{base}/api/v1/reporter/messages", json={"text": f"PT Contoh. {canary['message']}"},
                                 headers=auth, timeout=30)
        assert answered.status_code == 201, answered.text
        later = {"evidence": (canary["filename"], io.BytesIO(b"%PDF-1.4 " + canary["evidence"].encode() + os.urandom(700_000)),
                              "application/pdf")}
        added = reporter.post(f"{base}/api/v1/reporter/evidence", files=later, headers=auth, timeout=60)
        assert added.status_code == 201, added.text

        # the same through the follow-up page (cookie session), then sign out
        page = reporter.post(f"{base}/follow-up/sign-in", params={"pow": pow_header()["X-WBS-PoW"]},
                             files={"receipt": (None, receipt)}, timeout=30)
        assert page.status_code == 200 and 'id="state"' in page.text
        page_token = reporter.cookies.get("wbs_session")
        assert reporter.post(f"{base}/follow-up/sign-out", files={"x": (None, "")}, timeout=30).status_code == 200
        assert reporter.delete(f"{base}/api/v1/reporter/session", headers=auth, timeout=30).status_code == 204

        # the inspector reads the answer and the later file: it all arrived
        def inspector_sees_everything():
            case = requests.get(f"{stack.console_url}/api/v1/cases/{case_id}", headers=staff, timeout=10).json()
            return canary["message"] in json.dumps(case, ensure_ascii=False) and \
                canary["filename"] in {e["filename"] for e in case["evidence"]}
        wait_until(inspector_sees_everything, timeout=30, interval=0.5)
        wiretap.drain()
        # every service's metrics join the logs in the search below
        for service, address in stack.ops.items():
            scraped = requests.get(f"http://{address}/metrics", timeout=10)
            assert scraped.status_code == 200 and "wbs_handler_duration_seconds" in scraped.text
            (stack.log_dir / f"{service}.metrics").write_text(scraped.text)
        seen = {key for kind, key, _h, _b in wiretap.captured if kind == "event"}
        assert {"reporter_message_posted", "evidence_stored", "case_message_posted"} <= seen

    needles = [value.encode() for value in canary.values()] + [
        SOURCE_IP.encode(), receipt.encode(), receipt.replace("-", "").encode(), token.encode(), page_token.encode()]
    hex_needles = [n.hex().encode() for n in needles]
    assert scan_files(stack.log_dir, needles) == [], "canary in a log or in /metrics"
    if log_format == "json":  # one JSON object a line, with the fields log shippers index
        for path in stack.log_dir.glob("*.log"):
            for line in path.read_text().splitlines():
                assert line.startswith("{"), f"{path.name}: not a JSON line: {line[:300]}"
                entry = json.loads(line)
                assert {"time", "level", "service", "event"} <= set(entry), line
    assert scan_files(stack.data_dir, needles) == [], "canary on disk under the data dir"
    assert scan_files(stack.tmp_dir, needles) == [], "canary on disk under the temp dir"
    assert scan_databases(stack.env_database_urls(), [n.decode() for n in needles + hex_needles]) == []
    for kind, key, message_headers, body in wiretap.captured:
        blob = body + json.dumps(message_headers, default=str).encode()
        assert not [n for n in needles if n in blob], f"canary in a {kind} message {key}"
    for raw in smtp_sink.raw:
        assert not [n for n in needles if n in raw], "canary in an email"
    if store == "s3":
        from minio import Minio
        client = Minio(s3_server["endpoint"], access_key=s3_server["access_key"],
                       secret_key=s3_server["secret_key"], secure=False)
        for item in client.list_objects(s3_bucket, recursive=True):
            assert canary["filename"].encode() not in item.object_name.encode()
            data = client.get_object(s3_bucket, item.object_name).read()
            assert not [n for n in needles if n in data], "canary in a stored object"
    wiretap.close()
