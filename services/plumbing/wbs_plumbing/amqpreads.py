"""AMQP frames read from the kernel in one call instead of three.

py-amqp reads a frame as its 7-byte header, then its payload, then its one-byte end, each with a
``recv`` of exactly that many bytes: a message (method, header and body frames) costs nine
``recv`` calls, each through eventlet's green socket. The broker usually sends the whole message
in one segment, so most of those calls only copy what the first could have returned.

py-amqp's own reader already keeps whatever a ``recv`` returns beyond what it asked for in its
read buffer and serves the next reads from it, so asking the socket for at least
``READ_AHEAD`` bytes is all it takes: the frames are parsed by py-amqp as before, from fewer
system calls. Nothing waits on the socket's readiness while bytes sit in that buffer: every
reader (nameko's consumers, kombu's ``drain_events``) reads frames through the transport.

Only the plain TCP transport is changed; a TLS connection reads through the SSL object, whose
own buffer already does this. `install` runs once, when ``wbs_plumbing`` is imported.
"""
from amqp.transport import TCPTransport

#: The least a read asks the kernel for: more than a typical event or RPC message with its three
#: frames, and small enough that splitting the leftover off the buffer is a cheap copy.
READ_AHEAD = 16 * 1024


def install() -> None:
    """Make every plain TCP AMQP connection of this process read ahead (idempotent)."""
    if getattr(TCPTransport._setup_transport, "reads_ahead", False):
        return
    setup = TCPTransport._setup_transport

    def _setup_transport(self):
        setup(self)
        recv = self.sock.recv
        self._quick_recv = lambda size: recv(max(size, READ_AHEAD))

    _setup_transport.reads_ahead = True
    TCPTransport._setup_transport = _setup_transport
