"""Fixtures for the contract tests: a catalogue copy with subjects of its own, and an HTTP call counter."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from accord.devstack import repo_root


@pytest.fixture
def isolated_schemas(tmp_path: Path) -> Path:
    """A copy of schemas/ whose topics carry a suffix of this test's own, so its subjects are new.

    Tests share the session's registry; with their own subjects they never see each other's versions.
    """
    schemas = tmp_path / "schemas"
    shutil.copytree(repo_root() / "schemas", schemas)
    suffix = f"_t{uuid.uuid4().hex[:8]}"
    topics = yaml.safe_load((schemas / "topics.yaml").read_text())
    for topic in topics["topics"]:
        topic["name"] += suffix
    (schemas / "topics.yaml").write_text(yaml.safe_dump(topics))
    catalogue = yaml.safe_load((schemas / "catalogue.yaml").read_text())
    for entry in catalogue["events"].values():
        entry["topic"] += suffix
    (schemas / "catalogue.yaml").write_text(yaml.safe_dump(catalogue))
    return schemas


@dataclass
class CountingProxy:
    """A pass-through HTTP proxy in front of the real registry that counts the requests it forwards."""

    url: str
    requests: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.requests)


@pytest.fixture
def counting_registry(registry_url: str) -> Iterator[CountingProxy]:
    upstream = httpx.Client(base_url=registry_url, timeout=10)
    proxy = CountingProxy(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            with lock:
                proxy.requests.append(f"{self.command} {self.path}")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            response = upstream.request(self.command, self.path, content=body, headers=headers)
            self.send_response(response.status_code)
            for key in ("Content-Type",):
                if key in response.headers:
                    self.send_header(key, response.headers[key])
            self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        upstream.close()
