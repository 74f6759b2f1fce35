"""The late-confirm filter drops exactly py-amqp's "ack on a closing channel" warning, and every
service's config.yml puts it on the console handler."""
import logging
import logging.config
from pathlib import Path

import pytest
import yaml
from amqp import spec
from amqp.abstract_channel import AMQP_LOGGER, IGNORED_METHOD_DURING_CHANNEL_CLOSE

from wbs_plumbing.logfilters import LateConfirmFilter

SERVICES = Path(__file__).resolve().parents[2]


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []
        self.addFilter(LateConfirmFilter())

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def collected():
    handler = Collect()
    AMQP_LOGGER.addHandler(handler)
    yield handler.records
    AMQP_LOGGER.removeHandler(handler)


def test_the_late_ack_warning_is_dropped(collected):
    AMQP_LOGGER.warning(IGNORED_METHOD_DURING_CHANNEL_CLOSE, spec.Basic.Ack, 1)
    assert collected == []


def test_other_amqp_warnings_pass(collected):
    AMQP_LOGGER.warning(IGNORED_METHOD_DURING_CHANNEL_CLOSE, spec.Basic.Deliver, 1)
    AMQP_LOGGER.warning("Connection to broker lost")
    assert [r.getMessage() for r in collected] == [
        IGNORED_METHOD_DURING_CHANNEL_CLOSE % (spec.Basic.Deliver, 1), "Connection to broker lost"]


@pytest.fixture
def restore_logging():
    """dictConfig reconfigures the process's loggers: put them back afterwards."""
    manager = logging.root.manager
    saved = {name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
             for name, lg in list(manager.loggerDict.items()) if isinstance(lg, logging.Logger)}
    root = (logging.root.level, list(logging.root.handlers))
    yield
    for name, (level, handlers, propagate, disabled) in saved.items():
        lg = logging.getLogger(name)
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate, lg.disabled = propagate, disabled
    logging.root.setLevel(root[0])
    logging.root.handlers[:] = root[1]


@pytest.mark.parametrize("service", ["intake", "storage", "verification", "notification"])
def test_every_service_config_drops_the_late_ack_warning_only(service, restore_logging, capsys):
    from nameko.cli.main import setup_yaml_parser
    setup_yaml_parser()  # what `nameko run --config` reads config.yml with
    config = yaml.safe_load((SERVICES / service / "config.yml").read_text())
    logging.config.dictConfig(config["LOGGING"])
    AMQP_LOGGER.warning(IGNORED_METHOD_DURING_CHANNEL_CLOSE, spec.Basic.Ack, 1)
    AMQP_LOGGER.warning("Connection to broker lost")
    printed = capsys.readouterr().err
    assert "Connection to broker lost" in printed
    assert "Received method" not in printed
