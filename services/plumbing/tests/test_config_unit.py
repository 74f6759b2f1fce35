"""plumbing's one set of config parsing rules and the once-per-container settings."""
import pytest

from wbs_plumbing.config import ConfigError, flag, integer, number, service_settings, text


def test_values_parse_with_defaults_for_empty():
    assert text(None, "d") == "d" and text("  x ") == "x"
    assert number(None, 1.5) == 1.5 and number("", 2.0) == 2.0 and number("0.25", 1.0) == 0.25
    assert integer("7", 1) == 7 and integer(None, 3) == 3
    assert flag("yes") is True and flag("off", True) is False and flag(None, True) is True


@pytest.mark.parametrize("call, message", [
    (lambda: integer("x", 1, key="N"), "N must be an integer"),
    (lambda: integer("0", 1, key="N", minimum=1), "N must be >= 1"),
    (lambda: number("fast", 1.0, key="T"), "T must be a number"),
])
def test_bad_values_are_config_errors_naming_the_key(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_settings_are_parsed_once_per_container():
    class Container:
        config = {"A": "1"}

    parsed = []

    def parse(config):
        parsed.append(config)
        return object()

    one, two = Container(), Container()
    assert service_settings(one, parse) is service_settings(one, parse)
    assert service_settings(two, parse) is not service_settings(one, parse)
    assert len(parsed) == 2


def test_replicas_starting_together_on_a_fresh_folder_all_use_one_secret(tmp_path):
    """Each process generates a secret of its own; exactly one lands, complete, and every caller
    reads that one (a failed rename crashed a replica, and a late rename could change the key
    under a process that already used the first)."""
    import threading
    import time

    from wbs_plumbing.config import secret_file

    errors, paths = [], []

    def start(n):
        def generate():
            time.sleep(0.05)  # all of them past the existence check before any writes
            return f"secret-{n}".encode()
        try:
            paths.append(secret_file({"WBS_DATA_DIR": str(tmp_path)}, "SOME_KEY_FILE", "some.key", generate))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {p.read_bytes() for p in paths} == {(tmp_path / "some.key").read_bytes()}
    assert [p.name for p in tmp_path.iterdir()] == ["some.key"]
