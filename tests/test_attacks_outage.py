"""Finding 5 of the security review: a broker outage killed storage for good, and `wbs run`
stopped everything when one child exited. Here: the supervisor restarts a dead child with
backoff and says so, the others keep running."""
import subprocess
import sys

from tests.fixtures import wait_until
from wbs_cli.supervisor import Backoff, Children


def test_backoff_doubles_to_its_cap_and_resets_after_a_healthy_run():
    backoff = Backoff(first=1, cap=8, healthy_after=60)
    assert [backoff.next(ran_for=0.5) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert backoff.next(ran_for=61) == 1  # it had run for a minute: start over


def test_a_dead_child_is_restarted_and_the_others_keep_running():
    lines, started = [], []

    def start(name):
        started.append(name)
        # "crashy" dies at once, every time; "steady" lives until stopped
        code = "import sys; sys.exit(3)" if name == "crashy" else "import time; time.sleep(60)"
        return subprocess.Popen([sys.executable, "-c", code])

    children = Children(("crashy", "steady"), start, lines.append)
    children.backoff["crashy"] = Backoff(first=0.1, cap=0.2)
    steady = children.processes["steady"]
    try:
        def restarted_twice():
            children.tick()
            return children.restarts["crashy"] >= 2
        wait_until(restarted_twice, timeout=20, interval=0.05)
        assert "crashy exited with 3; restarting it in 0 s" in lines
        assert "crashy restarted (restart 1)" in lines
        assert steady.poll() is None and children.processes["steady"] is steady
        assert started.count("steady") == 1
    finally:
        children.stop(timeout=5)
    assert steady.poll() is not None  # stop() ends every child
