"""Findings 6 and 7 of the security review on both web surfaces (intake :8000, the console
:8001), against the real services as processes.

* 50 connections trickling a body at one byte a second: a normal request is answered while all
  of them are still open, and each of them is answered 408 and closed (the body deadline is 3 s
  here); clients that trickle their headers are closed too.
* The HTTP server's own refusals (too many headers, a line too long, a bad request line) carry
  the security headers and name no server or Python version; deeply nested JSON is a 400.
"""
import json
import socket
import threading
import time

import pytest
import requests

from tests.stack import Stack

TRICKLERS = 50
DEADLINE_SECONDS = 3


@pytest.fixture
def stack(tmp_path, rabbit_uri, pg_database, smtp_sink):
    databases = {service: pg_database(service) for service in ("intake", "storage", "verification", "notification")}
    stack = Stack(tmp_path / "stack", rabbit_uri, databases, smtp=(smtp_sink.host, smtp_sink.port), extra_env={
        "WEB_BODY_DEADLINE_SECONDS": str(DEADLINE_SECONDS), "WEB_HEADER_DEADLINE_SECONDS": str(DEADLINE_SECONDS)})
    with stack.start():
        yield stack


def _address(url):
    host, port = url.split("//", 1)[1].split(":")
    return host, int(port)


class Trickler(threading.Thread):
    """Sends a request's headers (or only part of them), then one byte a second; records what
    the server answered and whether it closed the connection."""

    def __init__(self, url, path, headers_complete=True):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(_address(url), timeout=60)
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 200\r\n")
        self.sock.sendall((head + "\r\n").encode() if headers_complete else head.encode())
        self.answer, self.closed, self.stop = b"", threading.Event(), threading.Event()

    def run(self):
        self.sock.settimeout(1.0)
        try:
            while not self.stop.is_set():
                try:
                    data = self.sock.recv(65536)
                    if not data:
                        break
                    self.answer += data
                except socket.timeout:
                    self.sock.sendall(b"x")  # one more byte, a second later
        except OSError:
            pass  # reset by the server: closed as well
        self.closed.set()


def _trickle_then_ask(url, path, normal):
    tricklers = [Trickler(url, path) for _ in range(TRICKLERS)]
    tricklers += [Trickler(url, path, headers_complete=False) for _ in range(5)]
    for trickler in tricklers:
        trickler.start()
    time.sleep(0.5)  # every trickler is connected and holding its request open
    answer = normal()
    still_open = sum(not t.closed.is_set() for t in tricklers)
    for trickler in tricklers:
        trickler.closed.wait(DEADLINE_SECONDS + 30)  # generous: an outcome, not a timing
        trickler.stop.set()
    return answer, still_open, tricklers


@pytest.mark.e2e
def test_trickling_clients_hold_no_worker_and_are_closed_at_the_deadline(stack):
    surfaces = [
        (stack.intake_url, "/api/v1/reporter/session",
         lambda: requests.get(f"{stack.intake_url}/api/v1/categories", timeout=60)),
        (stack.console_url, "/api/v1/auth/login",
         lambda: requests.post(f"{stack.console_url}/api/v1/auth/login", timeout=60,
                               json={"username": "nobody", "password": "x", "otp": "000000"})),
    ]
    for url, path, normal in surfaces:
        answer, still_open, tricklers = _trickle_then_ask(url, path, normal)
        assert answer.status_code in (200, 401), answer.text  # served ...
        assert still_open == len(tricklers)  # ... while every slow client still held its request
        for trickler in tricklers:
            assert trickler.closed.is_set()
        bodies = [t for t in tricklers[:TRICKLERS] if t.answer.startswith(b"HTTP/1.1 408")]
        assert len(bodies) == TRICKLERS, [t.answer[:40] for t in tricklers[:TRICKLERS]]
        assert all(b"X-Content-Type-Options: nosniff" in t.answer for t in bodies)
        assert all(t.answer == b"" for t in tricklers[TRICKLERS:])  # slow headers: just closed


def _raw(url, request: bytes) -> bytes:
    with socket.create_connection(_address(url), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return answer
            answer += data


@pytest.mark.e2e
def test_the_server_s_own_refusals_carry_the_security_headers_and_no_version(stack):
    many_headers = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n"
    long_line = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n"
    bad_line = b"NONSENSE\r\n\r\n"
    for url in (stack.intake_url, stack.console_url):
        for request, status in ((many_headers, b"431"), (long_line, b"400"), (bad_line, b"400")):
            answer = _raw(url, request)
            head = answer.split(b"\r\n\r\n", 1)[0]
            assert head.split(b" ")[1] == status, head[:60]
            assert b"Content-Security-Policy: default-src 'none'" in head
            assert b"X-Frame-Options: DENY" in head
            assert b"Server:" not in head and b"Python" not in answer and b"BaseHTTP" not in answer


@pytest.mark.e2e
def test_deeply_nested_json_is_a_400_not_a_500(stack):
    nested = "[" * 5000 + "]" * 5000
    for url, path in ((stack.intake_url, "/api/v1/reporter/session"), (stack.console_url, "/api/v1/auth/login")):
        answer = requests.post(f"{url}{path}", data=nested, headers={"Content-Type": "application/json"}, timeout=30)
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
    assert "RecursionError" not in stack.all_logs().decode("utf-8", "replace")
