"""Logging filters the services' LOGGING configuration (config.yml) puts on their handlers."""
import logging


class LateConfirmFilter(logging.Filter):
    """Drop py-amqp's warning about a publisher confirm that arrives on a closing channel.

    A message published through nameko's `Publisher` with ``mandatory`` and a confirm that no
    queue takes (an RPC to a service whose queue does not exist) comes back (basic.return);
    RabbitMQ then sends the confirm (basic.ack, method 60,80) for the same message, but the
    channel was already closed on the return, so py-amqp warns that it ignores the ack. That
    means nothing; every other amqp warning still gets through. (The outbox relay listens for
    returns itself and keeps its channel: `wbs_plumbing.db.EventPublisher`.)
    """

    LATE_ACK = (60, 80)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "amqp" and str(record.msg).startswith("Received method")
                    and record.args and tuple(record.args[0]) == self.LATE_ACK)


def configure_command_logging(program: str) -> None:
    """Logging for a command-line program (``wbs``, ``python -m bench``): warnings and errors to
    stderr, prefixed with the program's name, without the late-confirm warning above."""
    logging.basicConfig(level=logging.WARNING, format=f"{program}: %(levelname)s %(name)s: %(message)s")
    for handler in logging.root.handlers:
        handler.addFilter(LateConfirmFilter())
