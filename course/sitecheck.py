"""`course site-check`: load the built site in headless Chromium and fail on what a reader would see broken.

Run it after `mkdocs build --strict`. It serves `site/` on 127.0.0.1 (a free port, a thread
with `http.server`), starts Debian's Chromium headless with a fresh profile, and loads the home
page, the first lesson's page and the results page "What the report got wrong". A page fails on

- a console error or an uncaught exception (failed loads included),
- a request that leaves the local server (the site must work without a network),
- a broken image (not loaded, or `naturalWidth` 0),
- unrendered math: a formula that MathJax did not typeset, a TeX error, raw `\\(`, `\\[` or
  `$$` left in the text, or no typeset formula at all on a page that has math.

Chromium is driven through the DevTools protocol over a small standard-library WebSocket
client, so the check needs no Python package beyond the standard library. Screenshots of each
page go to `.course/site-check/` (viewport, 1280 × 1000).
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from course.registry import lessons

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--no-default-browser-check",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,1000",
)
RESULTS_PAGE = "results/report-errors.md"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Runs in the page after the load event: waits for MathJax and the images, then reports.
PROBE_JS = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const deadline = Date.now() + __TIMEOUT_MS__;
  const loaded = !!(window.MathJax && MathJax.startup && MathJax.startup.promise);
  if (loaded) await Promise.race([MathJax.startup.promise.catch(() => null), sleep(__TIMEOUT_MS__)]);
  const maths = () => [...document.querySelectorAll('.arithmatex')];
  const typeset = m => m.querySelector('mjx-container') !== null;
  while (loaded && Date.now() < deadline && maths().some(m => !typeset(m))) await sleep(100);
  while (Date.now() < deadline && [...document.images].some(i => !i.complete)) await sleep(100);

  // TeX errors: MathJax typesets a syntax error as <merror> and an unknown macro in red.
  const glyphs = e => [...e.querySelectorAll('use[data-c]')].map(u => String.fromCodePoint(parseInt(u.getAttribute('data-c'), 16))).join('');
  const texErrors = [...document.querySelectorAll('mjx-container [data-mml-node="merror"], mjx-container [data-mjx-error], mjx-container g[fill="red"]')]
    .map(e => (e.getAttribute('data-mjx-error') || glyphs(e) || e.textContent || 'TeX error').trim().slice(0, 100));

  const raw = [];
  const skip = 'pre, code, script, style, textarea, mjx-container, .arithmatex';
  const root = document.querySelector('article') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement && node.parentElement.closest(skip)) continue;
    if (/\\\(|\\\)|\\\[|\\\]|\$\$/.test(node.textContent)) raw.push(node.textContent.trim().slice(0, 100));
  }
  return JSON.stringify({
    title: document.title,
    mathjax: (window.MathJax && MathJax.version) || null,
    formulas: maths().length,
    rendered: maths().filter(typeset).length,
    unrendered: maths().filter(m => !typeset(m)).map(m => m.textContent.trim().slice(0, 100)),
    texErrors: texErrors,
    raw: raw.slice(0, 5),
    images: document.images.length,
    broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
  });
})()
"""


@dataclass
class PageResult:
    """What one page load showed."""

    path: str
    problems: list[str] = field(default_factory=list)
    summary: str = ""
    screenshot: Path | None = None


class DevToolsError(RuntimeError):
    """The browser answered a DevTools command with an error, or went away."""


class DevTools:
    """A minimal client for Chromium's DevTools protocol over one WebSocket (RFC 6455, text frames)."""

    def __init__(self, ws_url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(ws_url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.buffer = bytearray()
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        end = self.buffer.index(b"\r\n\r\n")
        head = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[: end + 4]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if " 101 " not in head.split("\r\n", 1)[0] + " " or accept not in head:
            raise DevToolsError(f"WebSocket handshake refused: {head.splitlines()[0] if head else 'no answer'}")
        self.next_id = 0
        self.events: list[dict] = []

    def close(self) -> None:
        try:
            self._send(0x8, b"")
        except OSError:
            pass
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise DevToolsError("the browser closed the DevTools connection")
        self.buffer += chunk

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def _send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        header = bytearray([0x80 | opcode])
        if n < 126:
            header.append(0x80 | n)
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        self.sock.sendall(bytes(header) + mask + masked)

    def _message(self) -> dict:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise DevToolsError("the browser closed the DevTools connection")
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if b0 & 0x80:
                return json.loads(b"".join(parts))

    def _until(self, deadline: float) -> dict:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            return self._message()
        except (socket.timeout, TimeoutError):
            raise TimeoutError from None

    def call(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept in `events`."""
        self.next_id += 1
        ident = self.next_id
        self._send(0x1, json.dumps({"id": ident, "method": method, "params": params or {}}).encode())
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._until(deadline)
            except TimeoutError:
                raise DevToolsError(f"{method}: no answer within {timeout:.0f} s") from None
            if message.get("id") == ident:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error'].get('message', message['error'])}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, since: int, timeout: float) -> bool:
        """Wait until an event `method` has arrived (at index `since` or later); False on timeout."""
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events[since:]):
            try:
                self.events.append(self._until(deadline))
            except TimeoutError:
                return False
        return True

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.events.append(self._until(deadline))
            except TimeoutError:
                return


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    failures: list[str]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def log_error(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        if code >= 400:
            self.failures.append(f"{code} {self.path}")
        super().send_response(code, message)


@contextmanager
def serve(site: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve `site` on 127.0.0.1 at a free port; yields the base URL and the list of failed requests."""
    failures: list[str] = []
    handler = functools.partial(type("Handler", (_QuietHandler,), {"failures": failures}), directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-check-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", failures
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def find_chromium(explicit: str | None) -> str | None:
    """The Chromium binary: --chromium, $CHROMIUM, Debian's /usr/bin/chromium, or one on PATH."""
    for candidate in (explicit, os.environ.get("CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def install_chromium() -> bool:
    """Install Debian's chromium with apt-get (root only). True when it is there afterwards."""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return False
    print("site-check: Chromium is missing; installing Debian's `chromium` with apt-get (a few minutes)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            return False
    return find_chromium(None) is not None


def _no_proxy_get(url: str, timeout: float) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read()


@contextmanager
def chromium(binary: str, timeout: float) -> Iterator[DevTools]:
    """Start headless Chromium with a fresh profile and yield a DevTools client attached to its page."""
    profile = Path(tempfile.mkdtemp(prefix="course-site-check-"))
    log = open(profile.parent / f"{profile.name}.log", "w+b")  # noqa: SIM115 - closed below
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    client = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-15:]
                raise DevToolsError("Chromium did not start:\n    " + "\n    ".join(tail or ["(no output)"]))
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(_no_proxy_get(f"http://127.0.0.1:{port}/json/list", timeout))
        page = next((t for t in targets if t.get("type") == "page"), None)
        if page is None:
            raise DevToolsError("Chromium has no page to attach to")
        client = DevTools(page["webSocketDebuggerUrl"], timeout)
        for domain in ("Page", "Runtime", "Log", "Network"):
            client.call(f"{domain}.enable")
        client.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        yield client
    finally:
        if client is not None:
            client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        os.unlink(log.name)
        shutil.rmtree(profile, ignore_errors=True)


def _page_problems(events: list[dict], base: str) -> list[str]:
    """Console errors, exceptions, failed loads and requests leaving the site, from DevTools events."""
    problems: list[str] = []
    urls = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"}
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "exception")
            problems.append(f"uncaught exception: {text.splitlines()[0]} ({details.get('url', '?')}:{details.get('lineNumber', '?')})")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            problems.append(f"console.{params['type']}: {text[:200]}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            problems.append(f"console error ({entry.get('source')}): {entry.get('text', '')[:200]} {entry.get('url', '')}".rstrip())
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith((base, "data:", "blob:", "about:")):
                problems.append(f"request leaves the site (the site must work offline): {url[:200]}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"failed to load ({params.get('errorText')}): {urls.get(params.get('requestId'), 'a request')}")
        elif method == "Network.responseReceived" and params.get("response", {}).get("status", 200) >= 400:
            response = params["response"]
            problems.append(f"HTTP {response['status']} for {response.get('url', '')}")
    return list(dict.fromkeys(problems))


def check_page(
    client: DevTools, base: str, path: str, expect_math: bool, shots: Path | None, timeout: float, full_page: bool = False
) -> PageResult:
    """Load one page and judge it."""
    result = PageResult(path)
    since = len(client.events)
    try:
        navigation = client.call("Page.navigate", {"url": base + path}, timeout)
        if navigation.get("errorText"):
            result.problems.append(f"navigation failed: {navigation['errorText']}")
            return result
        if not client.wait_for("Page.loadEventFired", since, timeout):
            result.problems.append(f"the page did not finish loading within {timeout:.0f} s")
        probe = PROBE_JS.replace("__TIMEOUT_MS__", str(int(timeout * 1000)))
        answer = client.call("Runtime.evaluate", {"expression": probe, "awaitPromise": True, "returnByValue": True}, timeout + 10)
        if "exceptionDetails" in answer:
            result.problems.append(f"the in-page check failed: {answer['exceptionDetails'].get('text')}")
            return result
        report = json.loads(answer["result"]["value"])
        client.drain(0.5)
        if shots is not None:
            params: dict = {"format": "png"}
            if full_page:
                size = client.call("Page.getLayoutMetrics", {}, timeout)["cssContentSize"]
                params |= {"captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}
            shot = client.call("Page.captureScreenshot", params, timeout)
            result.screenshot = shots / (path.removesuffix(".html").replace("/", "-") + ".png")
            result.screenshot.write_bytes(base64.b64decode(shot["data"]))
    except DevToolsError as error:
        result.problems.append(str(error))
        return result
    result.problems += _page_problems(client.events[since:], base)
    result.problems += [f"broken image: {src}" for src in report["broken"]]
    unrendered = report["unrendered"]
    result.problems += [f"formula not typeset: {' '.join(text.split())}" for text in unrendered[:5]]
    if len(unrendered) > 5:
        result.problems.append(f"... and {len(unrendered) - 5} more formulas not typeset")
    result.problems += [f"TeX error: {text}" for text in report["texErrors"]]
    result.problems += [f"raw math delimiters left in the text: {text!r}" for text in report["raw"]]
    if report["formulas"] and not report["mathjax"]:
        result.problems.append("the page has formulas but MathJax did not load")
    if expect_math and report["rendered"] == 0:
        result.problems.append("no typeset formula on a page that should have math (is pymdownx.arithmatex on?)")
    result.summary = f"{report['images']} images, {report['rendered']}/{report['formulas']} formulas typeset" + (
        f" (MathJax {report['mathjax']})" if report["mathjax"] else ""
    )
    return result


def page_file(site: Path, page: str) -> str | None:
    """The built file for a docs page (`lessons/l1-conv-stack.md`), with or without directory URLs."""
    stem = page.removesuffix(".md")
    candidates = ["index.html"] if stem == "index" else [f"{stem}.html", f"{stem}/index.html"]
    if stem.endswith("/index"):
        candidates = [f"{stem}.html"]
    return next((c for c in candidates if (site / c).is_file()), None)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `course site-check`."""
    parser.add_argument("--site", type=Path, default=Path("site"), help="the built site (default site/, from `mkdocs build --strict`)")
    parser.add_argument("--page", action="append", metavar="PATH", help="a page to load instead of the defaults, relative to the site (repeatable)")
    parser.add_argument("--chromium", help="the Chromium binary (default: $CHROMIUM, /usr/bin/chromium, or one on PATH)")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install Chromium when it is missing")
    parser.add_argument("--screenshots", type=Path, default=Path(".course/site-check"), help="where page screenshots go (default .course/site-check/)")
    parser.add_argument("--no-screenshots", action="store_true", help="take no screenshots")
    parser.add_argument("--full-page", action="store_true", help="screenshot whole pages instead of the first screen")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per page (default 60)")


def run(args: argparse.Namespace) -> int:
    """`course site-check`: serve the built site, load pages in headless Chromium, report and return 0 or 1."""
    site = args.site
    if not (site / "index.html").is_file():
        print(f"site-check: {site}/index.html not found; build the site first: mkdocs build --strict", file=sys.stderr)
        return 2
    if args.page:
        pages = [(p.lstrip("/"), False) for p in args.page]
    else:
        wanted = [("index.md", True), (lessons()[0].page, True), (RESULTS_PAGE, True)]
        pages = []
        for page, expect_math in wanted:
            built = page_file(site, page)
            if built is None:
                print(f"site-check: {site} has no page for docs/{page}; is the site built from this checkout?", file=sys.stderr)
                return 2
            pages.append((built, expect_math))

    binary = find_chromium(args.chromium)
    if binary is None and not args.no_install:
        binary = find_chromium(None) if install_chromium() else None
    if binary is None:
        print("site-check: Chromium not found. Install Debian's package: apt-get update && apt-get install -y chromium", file=sys.stderr)
        return 2

    shots = None if args.no_screenshots else args.screenshots
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: list[PageResult] = []
    try:
        with serve(site) as (base, server_failures), chromium(binary, args.timeout) as client:
            version = client.call("Runtime.evaluate", {"expression": "navigator.userAgent", "returnByValue": True})["result"]["value"]
            browser = next((part for part in version.split() if "Chrome/" in part), "Chromium")
            print(f"site-check: serving {site}/ at {base} and loading {len(pages)} pages in headless {browser.replace('HeadlessChrome', 'Chromium')}")
            for path, expect_math in pages:
                failed_before = len(server_failures)
                result = check_page(client, base, path, expect_math, shots, args.timeout, args.full_page)
                result.problems += [f"server answered {f}" for f in server_failures[failed_before:] if not any(f.split()[-1] in p for p in result.problems)]
                results.append(result)
                status = "ok  " if not result.problems else "FAIL"
                shot = f"  [screenshot {result.screenshot}]" if result.screenshot else ""
                print(f"  {status}  {path:<32} {result.summary}{shot}")
                for problem in result.problems:
                    print(f"        - {problem}")
    except DevToolsError as error:
        print(f"site-check: {error}", file=sys.stderr)
        return 1
    failed = sum(bool(r.problems) for r in results)
    print(f"site-check: {len(results)} pages, {failed} failed ({time.monotonic() - started:.1f} s)")
    return 1 if failed else 0
