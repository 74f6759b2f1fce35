"""An example integrator: open cases per unit, for an Inspectorate General's dashboard.

It shows what every consumer of WBS events needs, in one file with no dependency but `pika`:

* a durable queue of its own (`integrator.<name>.dashboard`), bound with the routing keys it
  needs, so events wait for it while it is down;
* manual acknowledgements, sent only after the event's effect is committed: a crash before the
  ack means the broker delivers the event again;
* deduplication on `event_id`, in the same transaction as the effect: delivery is at least once
  (a redelivery, a duplicate publish, the history overlapping the queue), the effect is exactly once;
* on its first start, the history stream `wbs.events.history` from the beginning, so the counts
  include what happened before the dashboard existed. The queue is bound *before* the history
  is read, so nothing falls in the gap; what is in both is deduplicated.
* unknown fields are ignored and unknown event types acknowledged and skipped (the compatibility
  rule lets a release add optional fields; docs/events.md).

    python examples/case_dashboard.py --amqp-uri amqp://integrator-itjen:...@rabbitmq:5672/%2F --name itjen
"""
from __future__ import annotations

import argparse
import json
import sqlite3

import pika

HISTORY_STREAM = "wbs.events.history"
BINDINGS = (("verification.events", "case_opened"), ("verification.events", "case_status_changed"))
# The states a case ends in (the lifecycle vocabulary of the catalogue's case_status_changed).
END_STATES = {"referred", "not_actionable", "closed"}

SCHEMA = """
create table if not exists processed (event_id text primary key);
create table if not exists cases (case_id text primary key, unit text not null, open integer not null);
create table if not exists meta (key text primary key, value text not null);
"""


class Dashboard:
    def __init__(self, amqp_uri: str, name: str, db_path: str):
        self.amqp_uri, self.queue = amqp_uri, f"integrator.{name}.dashboard"
        self.db = sqlite3.connect(db_path, isolation_level=None)
        self.db.executescript(SCHEMA)
        self.connection = self.channel = None

    # -- the effect, exactly once ------------------------------------------------------------

    def apply(self, event_type: str, body: dict) -> bool:
        """Apply one event and remember its id in one transaction; False if seen before."""
        with self._transaction():
            seen = self.db.execute("insert or ignore into processed values (?)", (body["event_id"],))
            if seen.rowcount == 0:
                return False
            if event_type == "case_opened":
                self.db.execute("insert or ignore into cases values (?, ?, 1)", (body["case_id"], body["unit"]))
            elif event_type == "case_status_changed" and body["to_state"] in END_STATES:
                self.db.execute("update cases set open = 0 where case_id = ?", (body["case_id"],))
            return True

    def _transaction(self):
        db = self.db

        class Transaction:
            def __enter__(self):
                db.execute("begin immediate")

            def __exit__(self, kind, *_):
                db.execute("commit" if kind is None else "rollback")
        return Transaction()

    def open_cases(self) -> dict[str, int]:
        rows = self.db.execute("select unit, sum(open) from cases group by unit order by unit")
        return {unit: count for unit, count in rows}

    # -- the broker ----------------------------------------------------------------------------

    def connect(self):
        self.connection = pika.BlockingConnection(pika.URLParameters(self.amqp_uri))
        self.channel = self.connection.channel()
        self.channel.queue_declare(self.queue, durable=True)
        for exchange, routing_key in BINDINGS:
            self.channel.queue_bind(self.queue, exchange, routing_key)

    def close(self):
        if self.connection is not None and self.connection.is_open:
            self.connection.close()

    def catch_up(self, idle_seconds: float = 2.0) -> int:
        """First start only: apply the history from its first event; return how many applied."""
        if self.db.execute("select 1 from meta where key = 'history_read'").fetchone():
            return 0
        applied = 0
        self.channel.basic_qos(prefetch_count=500)  # streams require a prefetch
        for method, properties, raw in self.channel.consume(
                HISTORY_STREAM, arguments={"x-stream-offset": "first"}, inactivity_timeout=idle_seconds):
            if method is None:  # nothing more for a while: the history is read
                break
            applied += self._handle(method, properties, raw)
        self.channel.cancel()
        self.db.execute("insert or replace into meta values ('history_read', '1')")
        return applied

    def run(self, max_messages: int = 0, idle_seconds: float | None = None) -> int:
        """Consume the queue; stop after `max_messages` (0: never) or `idle_seconds` of quiet."""
        handled = 0
        self.channel.basic_qos(prefetch_count=50)
        for method, properties, raw in self.channel.consume(self.queue, inactivity_timeout=idle_seconds):
            if method is None:
                break
            self._handle(method, properties, raw)
            handled += 1
            if max_messages and handled >= max_messages:
                break
        self.channel.cancel()
        return handled

    def _handle(self, method, properties, raw) -> int:
        event_type = properties.type or method.routing_key
        applied = 0
        if event_type in {key for _exchange, key in BINDINGS}:
            applied = int(self.apply(event_type, json.loads(raw)))
        self.acknowledge(method.delivery_tag)  # only now: the effect is committed
        return applied

    def acknowledge(self, delivery_tag):
        self.channel.basic_ack(delivery_tag)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--amqp-uri", required=True)
    parser.add_argument("--name", required=True, help="the NAME given to `wbs integrator add`")
    parser.add_argument("--db", default="dashboard.sqlite3")
    args = parser.parse_args(argv)
    dashboard = Dashboard(args.amqp_uri, args.name, args.db)
    dashboard.connect()
    print(f"history: {dashboard.catch_up()} event(s) applied")
    try:
        while True:
            dashboard.run(idle_seconds=10)
            print(json.dumps(dashboard.open_cases()), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        dashboard.close()


if __name__ == "__main__":
    main()
