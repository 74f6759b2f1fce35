"""The `wbs` command against running services on a real broker (docs/interface.md §5)."""
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import pyotp
from nameko.testing.services import entrypoint_hook

from tests.fixtures import wait_until
from verification.service import VerificationService
from wbs_plumbing.reliable import DEAD_LETTER_QUEUE

WBS = str(Path(sys.executable).parent / "wbs")


def wbs(amqp_uri, *args, timeout=60, **env):
    """``amqp_uri`` may be a service's config: then the command also signs with the admin key of
    that config's data dir, as privileged RPCs require (wbs_plumbing.grants)."""
    if isinstance(amqp_uri, dict):
        env.setdefault("WBS_DATA_DIR", amqp_uri["WBS_DATA_DIR"])
        amqp_uri = amqp_uri["AMQP_URI"]
    return subprocess.run([WBS, *args], capture_output=True, text=True, timeout=timeout,
                          env={"AMQP_URI": amqp_uri, "PATH": "/usr/bin:/bin", **env})


def test_unit_and_inspector_add_create_an_account_that_can_sign_in(container_factory, service_config):
    config = service_config("verification")
    container = container_factory(VerificationService, config)
    container.start()
    uri = config  # the broker and the data dir with the admin key
    assert wbs(uri, "unit", "add", "cli-itjen", "--name", "Inspektorat CLI", "--inspectorate").returncode == 0
    added = wbs(uri, "unit", "add", "cli-dit", "--name", "Direktorat CLI", "--parent", "cli-itjen")
    assert added.returncode == 0, added.stderr
    duplicate = wbs(uri, "unit", "add", "cli-dit", "--name", "again")
    assert duplicate.returncode != 0 and "Traceback" not in duplicate.stderr

    result = wbs(uri, "inspector", "add", "siti", "--email", "siti@itjen.example.go.id", "--unit", "cli-itjen")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    password = next(l.split(":", 1)[1].strip() for l in lines if l.startswith("password:"))
    totp = pyotp.parse_uri(next(w for w in result.stdout.split() if w.startswith("otpauth://")))
    import requests
    host = config["WEB_SERVER_ADDRESS"]
    response = requests.post(f"http://{host}/api/v1/auth/login",
                             json={"username": "siti", "password": password, "otp": totp.now()})
    assert response.status_code == 200, response.text
    token = response.json()["token"]

    supervisor = wbs(uri, "inspector", "add", "rudi", "--email", "rudi@itjen.example.go.id", "--unit", "cli-itjen",
                     "--role", "supervisor", "--nip", "198001012005011001", "--oversees", "cli-dit")
    assert supervisor.returncode == 0, supervisor.stderr
    oversee = wbs(uri, "inspector", "oversee", "rudi", "cli-itjen", "cli-dit")
    assert oversee.returncode == 0 and "cli-dit" in oversee.stdout and "cli-itjen" in oversee.stdout, oversee.stderr
    assert wbs(uri, "inspector", "move", "siti", "--unit", "cli-dit").returncode == 0

    disabled = wbs(uri, "inspector", "disable", "siti")
    assert disabled.returncode == 0 and "sessions revoked: 1" in disabled.stdout, disabled.stdout + disabled.stderr
    assert requests.get(f"http://{host}/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert wbs(uri, "inspector", "enable", "siti").returncode == 0
    unknown = wbs(uri, "inspector", "revoke-sessions", "nobody")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr


def test_events_tail_prints_published_events(rabbit_uri):
    tail = subprocess.Popen([WBS, "events", "tail", "--count", "1", "--timeout", "20"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={"AMQP_URI": rabbit_uri, "PATH": "/usr/bin:/bin"})
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_uri))
    channel = connection.channel()
    channel.exchange_declare("verification.events", "topic", durable=True)
    body = json.dumps({"case_id": str(uuid.uuid4())})
    # publish until the tail's queue is bound (it prints its banner on stderr once listening)
    assert "listening" in tail.stderr.readline()
    channel.basic_publish("verification.events", "case_opened", body.encode())
    out, _ = tail.communicate(timeout=30)
    connection.close()
    assert out.strip() == f"verification.events case_opened {body}"


def test_dead_letters_are_listed_without_being_consumed_and_replayed_to_their_queue(container_factory, service_config):
    config = service_config("verification")
    container = container_factory(VerificationService, config)
    container.start()
    uri = config["AMQP_URI"]
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    channel.basic_publish("intake.events", "report_submitted", b'{"schema_version": 1}',
                          pika.BasicProperties(content_type="application/json", message_id="poison-1"))

    def listed():
        result = wbs(uri, "dlq", "list")
        return result.stdout if "poison-1" in result.stdout else None
    listing = wait_until(listed, timeout=20)
    assert "evt-intake-report_submitted--verification" in listing and "InvalidEvent" in listing
    assert "poison-1" in wbs(uri, "dlq", "list").stdout  # listing did not consume it

    container.stop()  # so the replayed message stays in its queue where we can count it
    replayed = wbs(uri, "dlq", "replay", "poison-1")
    assert replayed.returncode == 0, replayed.stderr
    original = next(line.split()[2] for line in listing.splitlines() if "poison-1" in line)
    assert channel.queue_declare(original, passive=True).method.message_count == 1
    assert channel.queue_declare(DEAD_LETTER_QUEUE, passive=True).method.message_count == 0
    assert wbs(uri, "dlq", "replay", "poison-1").returncode != 0
    connection.close()


def test_a_letter_the_broker_dead_lettered_itself_is_listed_and_replayed_from_its_x_death(rabbit_uri):
    """A quorum queue's delivery limit dead-letters a message with the broker's own ``x-death``
    record and none of our handlers' headers; the operator must still see where it came from
    and be able to send it back."""
    from wbs_plumbing.queues import consumed_arguments, plain_arguments
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_uri))
    channel = connection.channel()
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True, arguments=plain_arguments())
    arguments = dict(consumed_arguments(), **{"x-delivery-limit": 1})
    channel.queue_declare("evt-test-limited", durable=True, arguments=arguments)
    channel.basic_publish("", "evt-test-limited", b'{"n": 1}',
                          pika.BasicProperties(content_type="application/json", message_id="limited-1"))

    def handed_back_until_dead_lettered():  # a consumer that keeps handing the message back
        method, _properties, _body = channel.basic_get("evt-test-limited")
        if method:
            channel.basic_nack(method.delivery_tag, requeue=True)
        return channel.queue_declare(DEAD_LETTER_QUEUE, passive=True).method.message_count == 1
    wait_until(handed_back_until_dead_lettered, timeout=20, interval=0.2)

    listing = wbs(rabbit_uri, "dlq", "list").stdout
    line = next(line for line in listing.splitlines() if "limited-1" in line)
    assert "evt-test-limited" in line and "delivery_limit" in line, listing
    replayed = wbs(rabbit_uri, "dlq", "replay", "limited-1")
    assert replayed.returncode == 0, replayed.stderr
    method, properties, body = channel.basic_get("evt-test-limited", auto_ack=True)
    assert body == b'{"n": 1}' and "x-death" not in (properties.headers or {})
    connection.close()


def test_keys_rotate_activates_a_new_key(tmp_path):
    data = tmp_path / "data"
    env = {"WBS_DATA_DIR": str(data), "STORAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'storage.db'}",
           "KEY_ROTATION_GRACE_SECONDS": "0"}
    assert wbs("amqp://unused/", "migrate", "storage", **env).returncode == 0
    first = wbs("amqp://unused/", "keys", "rotate", **env)
    assert first.returncode == 0, first.stderr
    second = wbs("amqp://unused/", "keys", "rotate", **env)
    assert second.returncode == 0, second.stderr
    active = lambda out: out.split("active key: ", 1)[1].split(";", 1)[0]
    assert active(first.stdout) != active(second.stdout)
    keys = json.loads((data / "keys.json").read_text())
    # the retired key wraps no data key, so the rotation destroyed it (crypto-shredding needs that)
    assert [k["id"] for k in keys["keys"]] == [active(second.stdout)] == [keys["active"]]
    assert f"destroyed retired key {active(first.stdout)}" in second.stdout
    assert oct((data / "keys.json").stat().st_mode)[-3:] == "600"
