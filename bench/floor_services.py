"""The floor's three nameko services (`bench/floor.py` runs each as its own process).

The least a reliable report pipeline does, from the parts the real system is made of (nameko on
RabbitMQ with msgpack RPC, AES-256-GCM from `cryptography`, psycopg2 made green, SQLAlchemy):

* ``floor_front``: ``POST /reports`` reads the body (1 MiB of evidence) and makes one RPC
  carrying it to ``floor_vault``; answers 201 with the report id.
* ``floor_vault``: encrypts the body with AES-256-GCM (report id as associated data), writes it
  to a new file and fsyncs it, commits one ``reports`` row and its ``outbox`` event in one
  transaction, publishes the event with a publisher confirm (``mandatory``) and marks it sent.
* ``floor_sink``: consumes the event (acked after the handler) and commits one ``cases`` row,
  idempotently (``ON CONFLICT DO NOTHING`` on the event id).

What it leaves out on purpose is what makes the real system more than a pipe: proof of work,
validation, sealed transit, key wrapping, routing, email, audit. The gap between the two is the
price of those, plus everything that is not needed.
"""
import json
import os
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kombu import Exchange
from nameko.amqp.publish import Publisher
from nameko.events import event_handler
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http
from sqlalchemy import create_engine, text

from wbs_plumbing.db import green_postgres

EVENTS = Exchange("floor_vault.events", type="topic", durable=True)

SCHEMA = {
    "vault": ["CREATE TABLE reports (report_id text PRIMARY KEY, object text NOT NULL, "
              "created_at timestamptz NOT NULL DEFAULT now())",
              "CREATE TABLE outbox (id bigserial PRIMARY KEY, event_id text UNIQUE NOT NULL, body text NOT NULL, "
              "created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz)"],
    "sink": ["CREATE TABLE cases (event_id text PRIMARY KEY, report_id text NOT NULL, "
             "created_at timestamptz NOT NULL DEFAULT clock_timestamp())"],
}


class Floor(DependencyProvider):
    """The process's database engine, data folder, data key and confirming publisher."""

    def setup(self):
        config = self.container.config
        green_postgres()
        self.engine = create_engine(config["FLOOR_DATABASE_URL"], pool_size=10, max_overflow=10)
        self.folder = Path(config["FLOOR_DATA_DIR"])
        self.folder.mkdir(parents=True, exist_ok=True)
        self.aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self.publisher = Publisher(config["AMQP_URI"], use_confirms=True, mandatory=True, serializer="json")

    def get_dependency(self, worker_ctx):
        return self


class FloorFront:
    name = "floor_front"
    vault = RpcProxy("floor_vault")

    @http("POST", "/reports")
    def submit(self, request):
        report_id = self.vault.store(request.get_data(cache=False))
        return 201, json.dumps({"report_id": report_id})


class FloorVault:
    name = "floor_vault"
    floor = Floor()

    @rpc
    def store(self, body: bytes) -> str:
        report_id = str(uuid.uuid4())
        nonce = os.urandom(12)
        sealed = self.floor.aead.encrypt(nonce, body, report_id.encode())
        path = self.floor.folder / report_id
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, nonce + sealed)
            os.fsync(fd)
        finally:
            os.close(fd)
        event = {"event_id": str(uuid.uuid4()), "report_id": report_id}
        with self.floor.engine.begin() as connection:
            connection.execute(text("INSERT INTO reports (report_id, object) VALUES (:r, :o)"),
                               {"r": report_id, "o": path.name})
            connection.execute(text("INSERT INTO outbox (event_id, body) VALUES (:e, :b)"),
                               {"e": event["event_id"], "b": json.dumps(event)})
        self.floor.publisher.publish(event, exchange=EVENTS, routing_key="report_stored", declare=[EVENTS])
        with self.floor.engine.begin() as connection:
            connection.execute(text("UPDATE outbox SET published_at = now() WHERE event_id = :e"),
                               {"e": event["event_id"]})
        return report_id


class FloorSink:
    name = "floor_sink"
    floor = Floor()

    @event_handler("floor_vault", "report_stored")
    def handle_report_stored(self, event):
        with self.floor.engine.begin() as connection:
            connection.execute(text("INSERT INTO cases (event_id, report_id) VALUES (:e, :r) "
                                    "ON CONFLICT DO NOTHING"), {"e": event["event_id"], "r": event["report_id"]})
