"""The RabbitMQ definitions of deploy/ against the real broker: they import, the rendered user can
sign in with its password, and a service started on the pre-declared topology finds its queues
equivalent to its own declarations (a mismatch is PRECONDITION_FAILED at start) and consumes an
event that was published before it ever ran (docs/architecture.md §4.4, topology before traffic)."""
import importlib.util
import json
import secrets
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pika

from tests.fixtures import rabbitmqctl, wait_until
from notification.service import NotificationService

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("wbs_rabbit_definitions_it", ROOT / "deploy" / "rabbitmq" / "definitions.py")
definitions = importlib.util.module_from_spec(spec)
spec.loader.exec_module(definitions)


def test_rendered_definitions_load_and_match_the_services(service_config, container_factory, tmp_path, monkeypatch):
    tag = uuid.uuid4().hex[:8]
    vhost, user, password = f"wbs-defs-{tag}", f"wbs-defs-{tag}", secrets.token_urlsafe(18)
    monkeypatch.setenv("RABBITMQ_USER", user)
    monkeypatch.setenv("RABBITMQ_PASSWORD", password)
    rendered = tmp_path / "definitions.json"
    definitions.render(rendered)

    doc = json.loads(rendered.read_text())
    doc["vhosts"] = [{"name": vhost}]
    for kind in ("exchanges", "queues", "bindings", "permissions", "policies"):
        for item in doc[kind]:
            item["vhost"] = vhost
    # rabbitmqctl may run as the broker's user, which cannot read pytest's private tmp dir
    shared = Path(tempfile.mkdtemp(prefix="wbs-defs-"))
    shared.chmod(0o755)
    readable = shared / "definitions.json"
    readable.write_text(json.dumps(doc))
    readable.chmod(0o644)
    containers = []
    try:
        rabbitmqctl("import_definitions", str(readable))
        uri = f"amqp://{user}:{password}@127.0.0.1:5672/{quote(vhost, safe='')}"

        def connect():  # the import is asynchronous
            try:
                return pika.BlockingConnection(pika.URLParameters(uri))
            except pika.exceptions.AMQPError:
                return None
        connection = wait_until(connect, timeout=15)  # and the hashed password works
        queue = "evt-verification-case_assigned--notification.handle_case_assigned"
        wait_until(lambda: queue in rabbitmqctl("list_bindings", "-q", "-p", vhost,
                                                "source_name", "destination_name"), timeout=15)
        channel = connection.channel()
        channel.confirm_delivery()  # publish returns once the broker has enqueued the message
        channel.queue_declare("wbs.dead-letters", passive=True)
        # published while no notification service has ever run: waits in the declared queue
        event = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T10:00:00Z",
                 "case_id": str(uuid.uuid4()), "inspector_id": str(uuid.uuid4()), "unit": "dit-smp"}
        channel.basic_publish("verification.events", "case_assigned", json.dumps(event).encode(),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2),
                              mandatory=True)
        assert channel.queue_declare(queue, passive=True).method.message_count == 1
        connection.close()

        config = service_config("notification", AMQP_URI=uri, NOTIFY_RPC_TIMEOUT_SECONDS=1)
        container = container_factory(NotificationService, config)
        container.start()  # redeclares every queue with its own arguments: must be equivalent
        containers.append(container)
        from sqlalchemy import create_engine, text
        engine = create_engine(config["DATABASE_URL"])
        try:
            def recorded():
                with engine.connect() as conn:
                    return conn.execute(text("select count(*) from notifications where event_id = :e"),
                                        {"e": event["event_id"]}).scalar()
            wait_until(recorded, timeout=15)
        finally:
            engine.dispose()
    finally:
        for container in containers:
            container.stop()
        shutil.rmtree(shared, ignore_errors=True)
        rabbitmqctl("delete_user", user)
        rabbitmqctl("delete_vhost", vhost)
