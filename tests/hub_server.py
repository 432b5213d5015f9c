"""A loopback stand-in for the part of the Hugging Face Hub's HTTP API that huggingface_hub uses to download:
`GET /api/models/{repo}[/revision/{rev}]` (the file list with sizes, blob ids and LFS SHA-256 when `blobs` is
asked), `HEAD`/`GET /{repo}/resolve/{rev}/{file}` with X-Repo-Commit, X-Linked-Etag, X-Linked-Size and Range.
Reached through HF_ENDPOINT. Faults for the tests: close a file's connection after N bytes, hold Range requests
until released, serve corrupted bytes once; every byte served is counted per file.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

LFS_EXTS = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".onnx", ".msgpack")


@dataclass
class Repo:
    files: dict[str, bytes]
    commit: str = ""

    def __post_init__(self):
        listing = "".join(f"{p}:{hashlib.sha256(d).hexdigest()}" for p, d in sorted(self.files.items()))
        self.commit = hashlib.sha1(listing.encode()).hexdigest()

    def etag(self, path: str) -> str:
        data = self.files[path]
        if path.endswith(LFS_EXTS):
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def repo_from_folder(folder: Path) -> Repo:
    """A repo holding every file of a folder (a diffusers folder written by save_pretrained)."""
    folder = Path(folder)
    return Repo({p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()})


@dataclass
class Faults:
    drop_after: dict[str, int] = field(default_factory=dict)    # path -> close after N bytes (first GET only)
    hold_ranges: set[str] = field(default_factory=set)         # paths whose Range GETs wait for `release`
    corrupt_once: set[str] = field(default_factory=set)        # paths served with a flipped byte once
    throttle: dict[str, int] = field(default_factory=dict)      # path -> bytes per second (a slow network)


class HubServer:
    """Start with .start(), stop with .stop(); .url for HF_ENDPOINT."""

    def __init__(self, repos: dict[str, Repo]):
        self.repos = repos
        self.faults = Faults()
        self.served: dict[str, int] = {}           # path -> body bytes sent (GET)
        self.ranges: list[tuple[str, int]] = []    # (path, first byte) of each Range GET
        self.range_seen = threading.Event()
        self.authorizations: set[str] = set()     # Authorization headers received (the token reached the Hub)
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "HubServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _count(self, path: str, n: int) -> None:
        with self.lock:
            self.served[path] = self.served.get(path, 0) + n

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):       # quiet
                pass

            def _json(self, payload, status=200):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _missing(self):
                self._json({"error": "Repository not found"}, 404)

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                path = unquote(urlparse(self.path).path)
                if self.headers.get("Authorization"):
                    server.authorizations.add(self.headers["Authorization"])
                if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
                    return self._info(m.group(1))
                if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                    return self._resolve(m.group(1), m.group(3))
                self._missing()

            def _info(self, repo_id):
                repo = server.repos.get(repo_id)
                if repo is None:
                    return self._missing()
                siblings = []
                for name, data in sorted(repo.files.items()):
                    sib = {"rfilename": name, "size": len(data), "blobId": repo.etag(name)}
                    if name.endswith(LFS_EXTS):
                        sib["lfs"] = {"size": len(data), "sha256": repo.etag(name), "pointerSize": 134}
                    siblings.append(sib)
                self._json({"id": repo_id, "modelId": repo_id, "sha": repo.commit, "siblings": siblings})

            def _resolve(self, repo_id, name):
                repo = server.repos.get(repo_id)
                if repo is None or name not in repo.files:
                    return self._missing()
                data = repo.files[name]
                start = 0
                if m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):
                    start = int(m.group(1))
                if self.command == "GET" and start:
                    server.ranges.append((name, start))
                    server.range_seen.set()
                    if name in server.faults.hold_ranges:
                        server.release.wait(60)
                        return
                body = data[start:]
                if self.command == "GET" and name in server.faults.corrupt_once:
                    server.faults.corrupt_once.discard(name)
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("ETag", f'"{repo.etag(name)}"')
                self.send_header("X-Linked-Etag", f'"{repo.etag(name)}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if self.command == "HEAD":
                    return
                cut = server.faults.drop_after.pop(name, None)
                if cut is not None:
                    body = body[:cut]
                rate = server.faults.throttle.get(name)
                step = max(1, rate // 10) if rate else len(body) or 1
                for at in range(0, len(body), step):
                    self.wfile.write(body[at:at + step])
                    self.wfile.flush()
                    server._count(name, len(body[at:at + step]))
                    if rate:
                        time.sleep(step / rate)       # the slow network itself, not a wait for a result
                if cut is not None:
                    self.close_connection = True
                    self.connection.shutdown(2)

        return Handler
