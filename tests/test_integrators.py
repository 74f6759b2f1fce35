"""Integrator credentials and the event history, against the machine's real RabbitMQ.

Every refusal an integrator user must meet is tried for real: RabbitMQ, not our code, has to say
ACCESS_REFUSED. The management plugin is enabled once if the broker does not serve it yet (the
command needs it; the machine keeps it enabled).
"""
import json
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

import pika
import pytest
import requests

from tests.fixtures import RABBIT_HOST, RABBIT_PORT, management_url, wait_until  # noqa: F401
from wbs_cli import integrators
from wbs_cli.main import main as wbs
from wbs_contracts.asyncapi import example
from wbs_plumbing.history import HISTORY_STREAM, ensure_history, stream_arguments
from wbs_plumbing.reliable import event_handler

EXCHANGES = ("intake.events", "storage.events", "verification.events", "notification.events")
EVT_QUEUE = "evt-intake-report_submitted--verification.handle_report_submitted"
RPC_QUEUE = "rpc-storage"


@pytest.fixture
def broker(rabbit_uri, management_url, monkeypatch):
    """The production topology in a fresh vhost, plus the stream the services declare."""
    monkeypatch.setenv("AMQP_URI", rabbit_uri)
    monkeypatch.setenv("RABBITMQ_MANAGEMENT_URL", management_url)
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_uri))
    channel = connection.channel()
    channel.exchange_declare("nameko-rpc", "topic", durable=True)
    for exchange in EXCHANGES:
        channel.exchange_declare(exchange, "topic", durable=True)
    channel.queue_declare(EVT_QUEUE, durable=True)
    channel.queue_bind(EVT_QUEUE, "intake.events", "report_submitted")
    channel.queue_declare(RPC_QUEUE, durable=True)
    channel.queue_bind(RPC_QUEUE, "nameko-rpc", "storage.*")
    connection.close()
    assert ensure_history(rabbit_uri, EXCHANGES)
    api = integrators.Management.from_environment(rabbit_uri)
    made = []

    def add(name=None, events=()):
        name = name or f"t{uuid.uuid4().hex[:10]}"
        made.append(name)
        return name, integrators.add(api, name, list(events))
    yield api, add
    for name in made:
        integrators.remove(api, name)


def integrator_uri(rabbit_uri, user, password):
    vhost = urlsplit(rabbit_uri).path
    return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{RABBIT_HOST}:{RABBIT_PORT}{vhost}"


def connect(uri):
    return pika.BlockingConnection(pika.URLParameters(uri))


def publish_as_service(rabbit_uri, events):
    """Publish (exchange, event_type, body) triples as the services would, with confirms."""
    connection = connect(rabbit_uri)
    channel = connection.channel()
    channel.confirm_delivery()
    for exchange, event_type, body in events:
        channel.basic_publish(exchange, event_type, json.dumps(body).encode(), pika.BasicProperties(
            content_type="application/json", delivery_mode=2, message_id=body["event_id"], type=event_type))
    connection.close()


def fresh(event_type):
    return dict(example(event_type), event_id=str(uuid.uuid4()))


def read_properties_from_stream(uri, count, offset="first", timeout=10):
    """Up to `count` (properties, method, body) triples from the history stream."""
    connection = connect(uri)
    channel = connection.channel()
    channel.basic_qos(prefetch_count=100)  # a stream consumer must set one
    got = []
    for method, properties, body in channel.consume(HISTORY_STREAM, arguments={"x-stream-offset": offset},
                                                    inactivity_timeout=timeout):
        if method is None:
            break
        got.append((properties, method, json.loads(body)))
        channel.basic_ack(method.delivery_tag)
        if len(got) >= count:
            break
    channel.cancel()
    connection.close()
    return got


def read_stream(uri, offset, count, timeout=10):
    """Up to `count` (offset, body) pairs from the history stream, starting at `offset`."""
    return [(properties.headers["x-stream-offset"], body)
            for properties, _method, body in read_properties_from_stream(uri, count, offset, timeout)]


# -- what an integrator may do ---------------------------------------------------------------

def test_integrator_binds_its_own_queue_and_receives_its_events(broker, rabbit_uri):
    _api, add = broker
    name, made = add(events=["case_*", "report_submitted"])
    connection = connect(integrator_uri(rabbit_uri, made["username"], made["password"]))
    channel = connection.channel()
    queue = f"integrator.{name}.cases"
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, "verification.events", "case_opened")
    channel.queue_bind(queue, "intake.events", "report_submitted")
    body = fresh("case_opened")
    publish_as_service(rabbit_uri, [("verification.events", "case_opened", body)])

    def delivered():
        got = channel.basic_get(queue)
        return got if got[0] is not None else None
    method, properties, raw = wait_until(delivered)
    assert json.loads(raw) == body and properties.message_id == body["event_id"]
    channel.basic_ack(method.delivery_tag)
    connection.close()


def _forged_publish(channel, name):
    channel.confirm_delivery()
    channel.basic_publish("intake.events", "report_submitted", json.dumps(fresh("report_submitted")).encode())


def _publish_to_default_exchange(channel, name):
    channel.confirm_delivery()
    channel.basic_publish("", RPC_QUEUE, b"{}")


def _bind_to_rpc(channel, name):
    channel.queue_declare(f"integrator.{name}.rpc", durable=True)
    channel.queue_bind(f"integrator.{name}.rpc", "nameko-rpc", "storage.*")


def _consume_evt_queue(channel, name):
    channel.basic_get(EVT_QUEUE)


def _consume_rpc_queue(channel, name):
    channel.basic_get(RPC_QUEUE)


def _delete_other_queue(channel, name):
    channel.queue_delete(EVT_QUEUE)


def _purge_other_queue(channel, name):
    channel.queue_purge(EVT_QUEUE)


def _declare_outside_prefix(channel, name):
    channel.queue_declare(f"integrator.someone-else.{name}", durable=True)


def _bind_outside_patterns(channel, name):
    channel.queue_declare(f"integrator.{name}.q", durable=True)
    channel.queue_bind(f"integrator.{name}.q", "storage.events", "evidence_stored")


def _bind_everything_while_restricted(channel, name):
    channel.queue_declare(f"integrator.{name}.q", durable=True)
    channel.queue_bind(f"integrator.{name}.q", "verification.events", "#")


def _read_history_while_restricted(channel, name):
    channel.basic_qos(prefetch_count=10)
    channel.basic_consume(HISTORY_STREAM, lambda *a: None, arguments={"x-stream-offset": "first"})


def _delete_history(channel, name):
    channel.queue_delete(HISTORY_STREAM)


def _delete_event_exchange(channel, name):
    channel.exchange_delete("intake.events")


REFUSALS = [_forged_publish, _publish_to_default_exchange, _bind_to_rpc, _consume_evt_queue,
            _consume_rpc_queue, _delete_other_queue, _purge_other_queue, _declare_outside_prefix,
            _bind_outside_patterns, _bind_everything_while_restricted, _read_history_while_restricted,
            _delete_history, _delete_event_exchange]


@pytest.mark.parametrize("attempt", REFUSALS, ids=[f.__name__.strip("_") for f in REFUSALS])
def test_the_broker_refuses(broker, rabbit_uri, attempt):
    _api, add = broker
    name, made = add(events=["case_*"])
    connection = connect(integrator_uri(rabbit_uri, made["username"], made["password"]))
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        attempt(channel, name)
        channel.queue_declare(f"integrator.{name}.sync", durable=True)  # a round trip surfaces async refusals
    assert refused.value.reply_code == 403, refused.value
    connection.close()
    guest = connect(rabbit_uri).channel()  # nothing of ours was touched
    assert guest.queue_declare(EVT_QUEUE, passive=True).method.queue == EVT_QUEUE
    assert guest.queue_declare(HISTORY_STREAM, passive=True).method.queue == HISTORY_STREAM


def test_an_integrator_of_every_event_binds_with_hash_and_reads_the_history(broker, rabbit_uri):
    _api, add = broker
    name, made = add()
    uri = integrator_uri(rabbit_uri, made["username"], made["password"])
    channel = connect(uri).channel()
    channel.queue_declare(f"integrator.{name}.all", durable=True)
    for exchange in EXCHANGES:
        channel.queue_bind(f"integrator.{name}.all", exchange, "#")
    body = fresh("evidence_stored")
    publish_as_service(rabbit_uri, [("storage.events", "evidence_stored", body)])
    assert [b for _o, b in read_stream(uri, "first", 1)] == [body]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        _forged_publish(channel, name)
    assert refused.value.reply_code == 403


# -- the command ---------------------------------------------------------------------------

def test_add_list_remove_through_the_command(broker, rabbit_uri, capsys):
    api, _add = broker
    name = f"t{uuid.uuid4().hex[:10]}"
    try:
        wbs(["integrator", "add", name, "--events", "case_opened", "case_status_changed"])
        out = capsys.readouterr().out
        user = out.split("username: ", 1)[1].split()[0]
        password = out.split("password: ", 1)[1].split()[0]
        assert user == f"integrator-{name}" and len(password) >= 24
        connection = connect(integrator_uri(rabbit_uri, user, password))
        connection.channel().queue_declare(f"integrator.{name}.x", durable=True)
        wbs(["integrator", "list"])
        listed = capsys.readouterr().out
        assert name in listed and "case_opened|case_status_changed" in listed
    finally:
        wbs(["integrator", "remove", name])
    assert "queues deleted: 1" in capsys.readouterr().out

    def closed():
        try:
            connection.process_data_events(time_limit=0.2)
        except pika.exceptions.AMQPError:
            return True
        return connection.is_closed or None
    assert wait_until(closed, timeout=15)  # its open connection was closed
    with pytest.raises(pika.exceptions.AMQPError):
        connect(integrator_uri(rabbit_uri, user, password))
    wbs(["integrator", "list"])
    assert name not in capsys.readouterr().out


def test_add_refuses_a_pattern_that_matches_no_event(broker, capsys):
    with pytest.raises(SystemExit) as exit_:
        wbs(["integrator", "add", "dashboard", "--events", "case_openned"])
    assert exit_.value.code == 2
    assert "matches no event type" in capsys.readouterr().err


# -- the history stream ------------------------------------------------------------------------

def test_events_published_before_a_consumer_existed_are_replayed_in_order(broker, rabbit_uri):
    _api, add = broker
    first = [("intake.events", "report_submitted", fresh("report_submitted")),
             ("verification.events", "case_opened", fresh("case_opened")),
             ("storage.events", "evidence_stored", fresh("evidence_stored"))]
    publish_as_service(rabbit_uri, first)
    time.sleep(1.5)  # stream timestamps are per chunk, to the millisecond: separate the two batches
    between = datetime.now(timezone.utc)
    time.sleep(1.5)
    second = [("verification.events", "case_assigned", fresh("case_assigned")),
              ("notification.events", "notification_sent", fresh("notification_sent"))]
    publish_as_service(rabbit_uri, second)
    _name, made = add()  # the integrator exists only now
    uri = integrator_uri(rabbit_uri, made["username"], made["password"])
    everything = [body for _e, _t, body in first + second]

    replayed = read_stream(uri, "first", len(everything))
    assert [body for _offset, body in replayed] == everything
    offsets = [offset for offset, _body in replayed]
    assert offsets == sorted(offsets)
    from_third = read_stream(uri, offsets[2], 3)
    assert [body for _o, body in from_third] == everything[2:]
    since = read_stream(uri, between, 2)
    assert [body for _o, body in since] == everything[3:]


def test_the_stream_keeps_the_configured_retention(broker, rabbit_uri, management_url):
    vhost = quote(urlsplit(rabbit_uri).path[1:], safe="")
    queue = requests.get(f"{management_url}/api/queues/{vhost}/{HISTORY_STREAM}", auth=("guest", "guest"),
                         timeout=10).json()
    assert queue["arguments"] == stream_arguments(400) and queue["type"] == "stream"
    bindings = requests.get(f"{management_url}/api/queues/{vhost}/{HISTORY_STREAM}/bindings",
                            auth=("guest", "guest"), timeout=10).json()
    assert sorted(b["source"] for b in bindings if b["source"]) == sorted(EXCHANGES)


class _Verification:
    """A service with one reliable handler, named like a real publisher."""

    name = "verification"

    @event_handler("intake", "report_submitted")
    def handle(self, body):
        pass


def test_a_service_declares_the_stream_at_start_with_the_configured_retention(container_factory, rabbit_uri,
                                                                             management_url):
    container = container_factory(_Verification, {"AMQP_URI": rabbit_uri, "WBS_EVENT_HISTORY_DAYS": "30"})
    container.start()
    vhost = quote(urlsplit(rabbit_uri).path[1:], safe="")
    queue = requests.get(f"{management_url}/api/queues/{vhost}/{HISTORY_STREAM}", auth=("guest", "guest"),
                         timeout=10).json()
    assert queue["arguments"] == {"x-queue-type": "stream", "x-max-age": "30D"}
    body = fresh("case_opened")
    publish_as_service(rabbit_uri, [("verification.events", "case_opened", body)])
    assert [b for _o, b in read_stream(rabbit_uri, "first", 1)] == [body]
