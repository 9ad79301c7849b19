"""Real parts for the client-request tests (``../shared/api_examples/client_requests/``): a real
``platestream serve`` process, requests built byte for byte from an entry's description,
and webhook receivers that behave as the ``webhook_*_expectation.json`` entries describe.

A plain module (conftest is not importable); the fixtures using it are in
``test_client_requests.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

CLIENT_REQUESTS = Path(__file__).resolve().parents[3].parent / "shared/api_examples/client_requests"
TOKEN = "my-token-1234"
START_TIMEOUT_S = 180.0


def entry(name: str) -> dict[str, Any]:
    return json.loads((CLIENT_REQUESTS / name).read_text())


def example_image(part: dict[str, Any]) -> bytes:
    return (CLIENT_REQUESTS / part["example_image"]).resolve().read_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- requests as clients send them

@dataclass
class Part:
    name: str
    value: bytes
    filename: str | None = None
    content_type: str | None = None


def parts_of(entry_doc: dict[str, Any], **override: Any) -> list[Part]:
    """The entry's ``parts_in_order`` as a client sends them: ``file`` parts carry the example
    image bytes, a filename (its base name when the entry says "base name ...") and a part
    Content-Type only when the entry gives one; ``text`` parts with an ``example_image``
    carry its base64 text. ``override`` replaces a text part's example by name (``None``
    drops the part, a list repeats it)."""
    out: list[Part] = []
    for p in entry_doc["request"]["body"]["parts_in_order"]:
        name = p["name"]
        if name in override:
            value = override[name]
            for v in value if isinstance(value, list) else [value] if value is not None else []:
                out.append(Part(name, v.encode() if isinstance(v, str) else v))
            continue
        if p.get("type") == "file":
            fname = p.get("filename", "upload")
            if fname.startswith("base name"):
                fname = Path(p["example_image"]).name
            ctype = p.get("part_content_type")
            if ctype is not None and ctype.startswith("none"):
                ctype = None
            out.append(Part(name, example_image(p), fname, ctype))
        elif "example_image" in p:
            out.append(Part(name, base64.b64encode(example_image(p))))
        else:
            out.append(Part(name, p["example"].encode()))
    return out


def multipart(parts: Iterable[Part], boundary: str) -> bytes:
    lines = bytearray()
    for p in parts:
        lines += f"--{boundary}\r\n".encode()
        disp = f'Content-Disposition: form-data; name="{p.name}"'
        if p.filename is not None:
            disp += f'; filename="{p.filename}"'
        lines += disp.encode() + b"\r\n"
        if p.content_type:
            lines += f"Content-Type: {p.content_type}\r\n".encode()
        lines += b"\r\n" + p.value + b"\r\n"
    lines += f"--{boundary}--\r\n".encode()
    return bytes(lines)


PYTHON_REQUESTS = "python-requests/2.34.2"
CURL = "curl/8.5.0"
NODE_FETCH = "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"


def requests_boundary() -> str:
    return secrets.token_hex(16)  # python-requests: 32 hex digits


def curl_boundary() -> str:
    return "-" * 24 + secrets.token_hex(8)


def node_boundary() -> str:
    return "-" * 26 + "".join(secrets.choice("0123456789") for _ in range(24))


async def send(method: str, url: str, *, headers: dict[str, str] | None = None,
               body: bytes | None = None, timeout: float = 60.0) -> tuple[int, dict, Any]:
    """One request with exactly these headers and body bytes; (status, headers, JSON or text)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout),
                                     skip_auto_headers=("User-Agent", "Content-Type")) as s:
        async with s.request(method, url, headers=headers or {}, data=body) as r:
            text = await r.text()
            try:
                doc: Any = json.loads(text)
            except ValueError:
                doc = text
            return r.status, dict(r.headers), doc


async def post_multipart(url: str, parts: list[Part], *, user_agent: str, boundary: str,
                         token: str | None = None, sep: str = "; ",
                         extra: dict[str, str] | None = None) -> tuple[int, dict, Any]:
    # sep: "; " (python-requests, curl) or ";" (node-fetch: no space before boundary)
    headers = {"User-Agent": user_agent,
               "Content-Type": f"multipart/form-data{sep}boundary={boundary}"}
    if token is not None:
        headers["Authorization"] = f"Token {token}"
    headers.update(extra or {})
    return await send("POST", url, headers=headers, body=multipart(parts, boundary))


# ---------------------------------------------------------------- a real `platestream serve`

@dataclass
class Serve:
    """A ``platestream serve`` subprocess on 127.0.0.1 (started from a YAML config)."""

    base: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_serve(tmp: Path, server: dict[str, Any], name: str) -> Serve:
    import yaml

    port = free_port()
    server = {"host": "127.0.0.1", "port": port, "data_dir": str(tmp / f"{name}-data"),
              **server}
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({"server": server}))
    log_path = tmp / f"{name}.log"
    exe = Path(sys.executable).with_name("platestream")
    cmd = [str(exe), "serve", "--config", str(cfg), "--workers", "1", "--threads", "1"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
    srv = Serve(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"platestream serve exited {proc.returncode}: {srv.log()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return srv
        except OSError:
            time.sleep(0.3)
    srv.stop()
    raise RuntimeError(f"platestream serve did not listen within {START_TIMEOUT_S} s")


# ---------------------------------------------------------------- webhook receivers

@dataclass
class Received:
    """What a receiver parsed (payloads) and saved (files), in arrival order."""

    payloads: list[dict[str, Any]] = field(default_factory=list)
    files: list[tuple[str, bytes]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _form_fields(body: bytes, ctype: str) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """Fields and files of a multipart body, parsed with the stdlib email parser (as a
    receiver framework would, independently of the sender's library)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        data = part.get_payload(decode=True) or b""
        if filename is not None:
            files.append((filename, data))
        elif name is not None:
            fields[name] = data.decode()
    return fields, files


class Receivers:
    """The four parkpow receivers of the expectation files, on one 127.0.0.1 port.

    - ``/reader`` (webhook_reader.py): answers 200 whatever the body; multipart: field
      ``json`` and files; otherwise the body, without a ``json=`` prefix, percent-decoded
      with ``+`` as space, parsed as JSON ({} on error).
    - ``/flask`` (webhook_reader_flask.py): needs a form field ``json`` (multipart or
      urlencoded), else 500.
    - ``/js`` (webhook_reader.js): answers only multipart bodies or bodies containing
      ``json=`` (or no Content-Type); any other body gets no answer at all.
    - ``/lambda`` (lambda_function.py): multipart: the part whose headers mention json is
      the payload; reads data.results[i] candidates[0].plate, color[0].color,
      model_make[0].make/.model, orientation[0].orientation (500 if any is missing).
    """

    names = ("reader", "flask", "js", "lambda")

    def __init__(self) -> None:
        self.got = {n: Received() for n in self.names}
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="webhook-receivers", daemon=True)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("receivers did not start")

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def wait_for(self, name: str, predicate, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in list(self.got[name].payloads):
                if predicate(p):
                    return p
            time.sleep(0.2)
        raise AssertionError(f"{name}: no matching payload in {timeout} s; errors: "
                             f"{self.got[name].errors[-3:]}")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for n in self.names:
            app.router.add_post(f"/{n}", getattr(self, f"_{n}"))
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    async def _reader(self, request: web.Request) -> web.Response:
        got = self.got["reader"]
        body = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            fields, files = _form_fields(body, ctype)
            got.files += files
            payload = json.loads(fields["json"]) if "json" in fields else {}
        else:
            text = body.decode(errors="replace")
            text = text[5:] if text.startswith("json=") else text
            try:
                payload = json.loads(urllib.parse.unquote_plus(text))
            except ValueError:
                payload = {}
        got.payloads.append(payload)
        got.answered.append(200)
        return web.Response(text="OK")

    async def _flask(self, request: web.Request) -> web.Response:
        got = self.got["flask"]
        body = await request.read()
        ctype = request.headers.get("Content-Type", "")
        fields: dict[str, str] = {}
        if ctype.startswith("multipart/form-data"):
            fields, files = _form_fields(body, ctype)
            got.files += files[:1]
        elif ctype.startswith("application/x-www-form-urlencoded"):
            fields = dict(urllib.parse.parse_qsl(body.decode()))
        if "json" not in fields:
            got.errors.append("KeyError: 'json'")
            got.answered.append(500)
            return web.Response(status=500, text="<html>KeyError: 'json'</html>",
                                content_type="text/html")
        got.payloads.append(json.loads(fields["json"]))
        got.answered.append(200)
        return web.Response(text="OK")

    async def _js(self, request: web.Request) -> web.StreamResponse:
        got = self.got["js"]
        body = await request.read()
        ctype = request.headers.get("Content-Type")
        if ctype is None:
            return web.Response(text="OK!")
        if ctype.startswith("multipart/form-data"):
            fields, files = _form_fields(body, ctype)
            got.files += files
            if "json" in fields:
                got.payloads.append(json.loads(fields["json"]))
            got.answered.append(200)
            return web.Response(text="OK!")
        decoded = urllib.parse.unquote_plus(body.decode(errors="replace"))
        if "json=" in decoded:
            got.payloads.append(json.loads(decoded.split("json=", 1)[1]))
            got.answered.append(200)
            return web.Response(text="OK!")
        got.errors.append("no answer (body without json=)")
        await asyncio.sleep(3600)  # never answers; the sender's timeout ends it
        raise web.HTTPServiceUnavailable()

    async def _lambda(self, request: web.Request) -> web.Response:
        got = self.got["lambda"]
        body = await request.read()
        ctype = request.headers.get("Content-Type", "")
        try:
            if ctype.startswith("multipart/form-data"):
                boundary = ctype.split("boundary=", 1)[1].strip('"').encode()
                payload = None
                for chunk in body.split(b"--" + boundary):
                    head, _, content = chunk.partition(b"\r\n\r\n")
                    if b"json" in head and b"upload" not in head:
                        payload = json.loads(content.rstrip(b"\r\n").decode())
                if payload is None:
                    raise ValueError("no json part")
            elif b"json" in body:
                payload = json.loads(urllib.parse.unquote(
                    body.decode().split("json=")[1]))
            else:
                got.answered.append(200)
                return web.json_response({"statusCode": 200})
            for result in payload["data"]["results"]:
                _ = (result["candidates"][0]["plate"], result["color"][0]["color"],
                     result["model_make"][0]["make"], result["model_make"][0]["model"],
                     result["orientation"][0]["orientation"])
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            got.errors.append(f"{type(exc).__name__}: {exc}")
            got.answered.append(500)
            return web.json_response({"errorType": type(exc).__name__}, status=500)
        got.payloads.append(payload)
        got.answered.append(200)
        return web.json_response({"statusCode": 200, "body": "Webhook processing successful"})
