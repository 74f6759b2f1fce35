"""The browser harness itself: Chromium starts, renders a page, obeys the no-JavaScript switch."""
import http.server
import threading

import pytest

from tests.browser import screenshot
from tests.fixtures import free_port

PAGE = b"<!doctype html><title>t</title><p id=p>static</p><script>document.getElementById('p').textContent='scripted'</script>"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture
def page_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_chromium_runs_scripts(chromium, page_url, request):
    chromium.get(page_url)
    assert chromium.find_element("id", "p").text == "scripted"
    assert screenshot(chromium, request, "page").stat().st_size > 0


def test_chromium_without_javascript_shows_the_static_page(chromium_without_javascript, page_url):
    chromium_without_javascript.get(page_url)
    assert chromium_without_javascript.find_element("id", "p").text == "static"
