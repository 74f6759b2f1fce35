"""The work per report, counted by the services themselves (their Prometheus /metrics on the ops
port; `wbs_plumbing.metrics`): RPCs answered, messages published with and without a publisher
confirm, database transactions and SQL statements. Read before and after a run; the difference
divided by the reports is what one report cost, background work (relay polls, timers) included.
"""
from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

COUNTERS = ("wbs_rpc_served", "wbs_amqp_publishes", "wbs_sql_statements", "wbs_db_transactions")


def scrape(ops: dict) -> dict:
    """{(service, metric, labels): value} of the counters above, from every service's /metrics."""
    values = {}
    for service, address in ops.items():
        text = requests.get(f"http://{address}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            if family.name not in COUNTERS:
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "service"))
                    values[(service, family.name, labels)] = sample.value
    return values


def per_report(before: dict, after: dict, reports: int) -> dict:
    """The counts per report, in all and by service, and the RPCs by method."""
    delta = {key: value - before.get(key, 0.0) for key, value in after.items()}
    reports = max(1, reports)

    def total(metric, service=None, **labels):
        return sum(v for (s, m, l), v in delta.items() if m == metric and (service is None or s == service)
                   and all(dict(l).get(k) == want for k, want in labels.items())) / reports

    services = sorted({s for s, _m, _l in delta})
    result = {
        "rpcs": total("wbs_rpc_served"),
        "confirmed_publishes": total("wbs_amqp_publishes", confirmed="true"),
        "unconfirmed_publishes": total("wbs_amqp_publishes", confirmed="false"),
        "events_published": total("wbs_amqp_publishes", kind="event"),
        "transactions": total("wbs_db_transactions"),
        "rollbacks": total("wbs_db_transactions", outcome="rollback"),
        "sql_statements": total("wbs_sql_statements"),
        "by_service": {s: {"rpcs_served": total("wbs_rpc_served", s),
                           "confirmed_publishes": total("wbs_amqp_publishes", s, confirmed="true"),
                           "transactions": total("wbs_db_transactions", s),
                           "sql_statements": total("wbs_sql_statements", s)} for s in services},
        "rpc_methods": {},
    }
    for (service, metric, labels), value in sorted(delta.items()):
        if metric == "wbs_rpc_served" and value:
            result["rpc_methods"][f"{service}.{dict(labels)['method']}"] = value / reports
    return result
