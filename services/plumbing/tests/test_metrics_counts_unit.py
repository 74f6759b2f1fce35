"""The work counters `make bench` reads (wbs_plumbing.metrics): statements, transactions, publishes."""
from kombu import Exchange
from sqlalchemy import text

from wbs_plumbing import metrics
from wbs_plumbing.db import make_engine


def _value(counter, **labels):
    return (counter.labels(**labels) if labels else counter)._value.get()


def test_statements_and_transactions_are_counted(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'counted.db'}")
    statements, commits = _value(metrics.SQL_STATEMENTS), _value(metrics.DB_TRANSACTIONS, outcome="commit")
    rollbacks = _value(metrics.DB_TRANSACTIONS, outcome="rollback")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x int)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    connection = engine.connect()
    connection.execute(text("INSERT INTO t VALUES (2)"))
    connection.rollback()
    connection.close()
    assert _value(metrics.SQL_STATEMENTS) - statements == 3
    assert _value(metrics.DB_TRANSACTIONS, outcome="commit") - commits == 1
    assert _value(metrics.DB_TRANSACTIONS, outcome="rollback") - rollbacks == 1
    engine.dispose()


def test_publishes_are_counted_by_kind_and_confirm(monkeypatch):
    from nameko.amqp import publish as nameko_publish

    sent = []
    monkeypatch.setattr(nameko_publish.Publisher, "publish", lambda self, payload, **kw: sent.append(payload))
    metrics.count_publishes()
    metrics.count_publishes()  # idempotent: counted once per message
    confirmed = nameko_publish.Publisher("memory://", use_confirms=True)
    unconfirmed = nameko_publish.Publisher("memory://", use_confirms=False)
    before = {(k, c): _value(metrics.AMQP_PUBLISHES, kind=k, confirmed=c)
              for k in ("rpc", "event", "other") for c in ("true", "false")}
    confirmed.publish({}, exchange=Exchange("nameko-rpc"))
    confirmed.publish({}, exchange=Exchange("case.events"))
    confirmed.publish({}, exchange="storage.events")
    unconfirmed.publish({}, exchange="")
    after = {key: _value(metrics.AMQP_PUBLISHES, kind=key[0], confirmed=key[1]) for key in before}
    assert {key: after[key] - before[key] for key in before if after[key] != before[key]} == {
        ("rpc", "true"): 1, ("event", "true"): 2, ("other", "false"): 1}
    assert len(sent) == 4
