"""``AMQP_URI`` may name several nodes of one RabbitMQ cluster, separated by ``;``.

Why: a service that knows one node stops with that node. kombu (under nameko's consumers,
publishers, RPC proxies and the outbox relay) understands ``amqp://a;amqp://b;amqp://c`` as one
connection with alternates: it connects to the first reachable node and, when its connection
dies, reconnects to the next. Quorum queues (wbs_plumbing.queues) keep every queue and message
on the surviving majority, so the reconnected service finds its work where it left it. Code that
parses the URI itself (pika clients of the ``wbs`` command, the broker user of ``user_id``) uses
these helpers instead of ``urlsplit`` on the whole string.
"""
from __future__ import annotations


def node_uris(amqp_uri: str) -> list[str]:
    """Every node's URI, in the order given (``;``-separated, blanks ignored)."""
    return [part.strip() for part in (amqp_uri or "").split(";") if part.strip()]


def first_node(amqp_uri: str) -> str:
    """The first node's URI: user, password and vhost are the same on every node of a cluster."""
    nodes = node_uris(amqp_uri)
    return nodes[0] if nodes else amqp_uri


def pika_parameters(amqp_uri: str):
    """pika tries these in turn (``BlockingConnection(parameters)``), the first reachable wins."""
    import pika
    return [pika.URLParameters(uri) for uri in node_uris(amqp_uri)]
