"""AMQP frames read ahead (wbs_plumbing.amqpreads), against the real RabbitMQ: every message comes
back whole and in order, small and multi-frame ones mixed, from far fewer `recv` calls than
py-amqp's three a frame."""
import os

import wbs_plumbing  # noqa: F401 -- importing the package installs the read-ahead
from amqp.transport import TCPTransport
from kombu import Connection, Exchange, Queue


def test_importing_the_plumbing_makes_plain_amqp_connections_read_ahead():
    assert TCPTransport._setup_transport.reads_ahead


def test_messages_small_and_multi_frame_arrive_whole_and_in_order_from_fewer_reads_than_frames(rabbit_uri):
    bodies = [os.urandom(size) for size in (10, 600, 300_000, 5, 40_000, 1) * 10]
    queue = Queue("read-ahead", Exchange("", type="direct"), routing_key="read-ahead", auto_delete=False)
    with Connection(rabbit_uri) as connection:
        with connection.Producer() as producer:
            for body in bodies:
                producer.publish(body, routing_key="read-ahead", declare=[queue], serializer=None,
                                 content_type="application/octet-stream")
    received = []
    with Connection(rabbit_uri) as connection:
        connection.connect()
        transport = connection.connection.transport
        reads = []
        recv = transport._quick_recv
        transport._quick_recv = lambda size: reads.append(size) or recv(size)
        with connection.Consumer(queue, callbacks=[lambda body, message: (received.append(body), message.ack())],
                                 accept=["application/octet-stream"]):
            while len(received) < len(bodies):
                connection.drain_events(timeout=10)
        queue(connection.default_channel).delete()
    assert received == bodies
    # Without read-ahead: three reads a frame, three frames a message at the least (nine a
    # message). The 300 kB bodies span frames and many segments; the small ones share reads.
    assert len(reads) < 2 * len(bodies), len(reads)
