"""A small stateful emulator of the Vertex AI tuningJobs endpoints, reached through the real google-genai SDK.

It speaks the wire format the SDK uses with `vertexai=True` (PROVIDERS.md): create, get, list (pageSize, pageToken,
`labels.k="v"` filter) and cancel under /v1beta1. Jobs advance one state per GET (PENDING -> RUNNING -> SUCCEEDED),
so a test decides how long a job runs by how often it polls, with no sleeping. Failure injection covers what a real
submitter meets: 429/500 bursts, slow answers, jobs that fail, an ignored list filter, and a create that stores the
job and then never answers (the window in which a crashing submitter leaves an orphan job behind).

`{model}:generateContent` (evaluation) answers for a succeeded job's endpoint or a publisher model, deterministically:
`content_reply(body) -> str | {"text", "function_calls": [{"name", "args"}]}` (default "echo: <last user text>");
an endpoint no succeeded job produced is a 404. Request bodies are kept in `generate_requests`.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API = "/v1beta1"
TUNABLE_MODELS = frozenset({"gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro", "gemini-2.0-flash-001"})
PROGRESSION = ("JOB_STATE_PENDING", "JOB_STATE_RUNNING")  # then SUCCEEDED (or FAILED when injected)
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_LABEL_FILTER = re.compile(r'labels\.([a-z0-9_-]+)\s*[:=]\s*"?([^"\s]*)"?')
_CREATE = re.compile(rf"^{API}/projects/([^/]+)/locations/([^/]+)/tuningJobs$")
_JOB = re.compile(rf"^{API}/(projects/[^/]+/locations/[^/]+/tuningJobs/[^/:]+)(:cancel)?$")
_GENERATE = re.compile(rf"^{API}/(projects/[^/]+/locations/[^/]+/(?:endpoints/[^/:]+|publishers/google/models/[^/:]+))"
                       r":generateContent$")


@dataclass
class _Fault:
    remaining: int
    status: int | None = None  # an HTTP error to answer with
    delay: float = 0.0  # seconds to wait before answering
    method: str | None = None  # only requests with this method count


@dataclass
class EmulatedJob:
    body: dict[str, Any]
    polls: int = 0
    fail_with: str | None = None
    cancelled: bool = False
    labels: dict[str, str] = field(default_factory=dict)


class VertexEmulator:
    """Start with `with VertexEmulator() as vertex:`; point the SDK at `vertex.url` (GOOGLE_VERTEX_BASE_URL)."""

    def __init__(self, *, honour_filter: bool = True, require_auth: bool = True) -> None:
        self.honour_filter = honour_filter
        self.require_auth = require_auth
        self.jobs: dict[str, EmulatedJob] = {}  # name -> job, in creation order
        self.requests: list[tuple[str, str]] = []  # (method, path with query) as received
        self.hang_after_create = False  # store the job, then never answer the create call
        self.list_delay = 0.0  # seconds each list call waits before answering (widens a race between submitters)
        self.fail_after_create: int | None = None  # store the job, then answer the create call with this status
        self.content_reply: Callable[[dict[str, Any]], str | dict[str, Any]] | None = None
        self.generate_requests: list[tuple[str, dict[str, Any]]] = []  # (model, body) that reached a model
        self._faults: list[_Fault] = []
        self._fail_next_jobs: list[str] = []
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    @property
    def url(self) -> str:
        assert self._server is not None, "emulator not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> VertexEmulator:
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="vertex-emulator",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # let hanging handlers finish
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> VertexEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # failure injection
    def fail_next(self, n: int, status: int = 429, *, method: str | None = None) -> None:
        """The next n requests (of `method`, if given) are answered with `status` and a Google error body."""
        with self._lock:
            self._faults.append(_Fault(n, status=status, method=method))

    def slow_next(self, n: int, seconds: float, *, method: str | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(n, delay=seconds, method=method))

    def fail_next_job(self, message: str) -> None:
        """The next created job runs, then ends JOB_STATE_FAILED with this error message."""
        with self._lock:
            self._fail_next_jobs.append(message)

    def release(self) -> None:
        """Let a create that hangs (hang_after_create) answer."""
        self._released.set()

    # inspection
    def label_counts(self, key: str) -> Counter[str]:
        """How many jobs carry each value of label `key`: the submit-once check."""
        with self._lock:
            return Counter(j.labels[key] for j in self.jobs.values() if key in j.labels)

    def jobs_with_label(self, key: str, value: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(j.body) for j in self.jobs.values() if j.labels.get(key) == value]

    # request handling (called from handler threads)
    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.method in (None, method):
                    fault.remaining -= 1
                    return fault
        return None

    def _create(self, project: str, location: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        base = body.get("baseModel")
        spec = body.get("supervisedTuningSpec") or body.get("preferenceOptimizationSpec")
        if not base and not body.get("preTunedModel"):
            return _error(400, "baseModel is required.")
        if base and base not in TUNABLE_MODELS:
            return _error(400, f"Base model {base} is not supported for tuning.")
        if not spec or not str(spec.get("trainingDatasetUri", "")).startswith("gs://"):
            return _error(400, "training dataset must be a gs:// URI in supervisedTuningSpec.trainingDatasetUri.")
        labels = body.get("labels") or {}
        for k, v in labels.items():
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", k) or not re.fullmatch(r"[a-z0-9_-]{0,63}", v):
                return _error(400, f"Invalid label {k}={v}: lowercase letters, digits, _ and - only, <= 63 chars.")
        with self._lock:
            job_id = str(next(self._ids))
            name = f"projects/{project}/locations/{location}/tuningJobs/{job_id}"
            now = _now()
            stored = {**body, "name": name, "state": PROGRESSION[0], "createTime": now, "updateTime": now}
            job = EmulatedJob(stored, labels=dict(labels))
            if self._fail_next_jobs:
                job.fail_with = self._fail_next_jobs.pop(0)
            self.jobs[name] = job
        return 200, dict(stored)

    def _get(self, name: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                return _error(404, f"TuningJob {name} not found.")
            _advance(job)
            return 200, dict(job.body)

    def _cancel(self, name: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                return _error(404, f"TuningJob {name} not found.")
            if job.body["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
                return _error(400, f"TuningJob {name} is already in a final state {job.body['state']}.")
            job.cancelled = True
            job.body["state"] = "JOB_STATE_CANCELLING"
            return 200, {}

    def _list(self, parent: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if self.list_delay:
            time.sleep(self.list_delay)
        size = int(query.get("pageSize", ["50"])[0] or 50)
        start = int(query.get("pageToken", ["0"])[0] or 0)
        wanted = _LABEL_FILTER.findall(query.get("filter", [""])[0]) if self.honour_filter else []
        with self._lock:
            rows = [j for n, j in self.jobs.items() if n.startswith(parent + "/")]
            rows = [j for j in rows if all(j.labels.get(k) == v for k, v in wanted)]
            rows.reverse()  # newest first, like Vertex
            page = [dict(j.body) for j in rows[start : start + size]]
        out: dict[str, Any] = {"tuningJobs": page} if page else {}
        if start + size < len(rows):
            out["nextPageToken"] = str(start + size)
        return 200, out


    def _generate(self, model: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            endpoints = {(j.body.get("tunedModel") or {}).get("endpoint") for j in self.jobs.values()}
            if "/endpoints/" in model and model not in endpoints:
                return _error(404, f"Endpoint {model} not found.")
            self.generate_requests.append((model, body))
        users = [c for c in body.get("contents") or [] if c.get("role") == "user"]
        last = "".join(p.get("text", "") for p in (users[-1].get("parts") if users else []))
        answer = self.content_reply(body) if self.content_reply else f"echo: {last}"
        answer = {"text": answer} if isinstance(answer, str) else answer
        parts: list[dict[str, Any]] = [{"text": answer["text"]}] if answer.get("text") else []
        parts += [{"functionCall": {"name": c["name"], "args": c.get("args") or {}}}
                  for c in answer.get("function_calls") or []]
        prompt_tokens = sum(len(p.get("text", "").split()) + 1 for c in body.get("contents") or []
                            for p in c.get("parts") or [])
        return 200, {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
                     "usageMetadata": {"promptTokenCount": prompt_tokens,
                                       "candidatesTokenCount": len(str(answer.get("text") or "").split()) + 1},
                     "modelVersion": model}


def _advance(job: EmulatedJob) -> None:
    """One step per poll; terminal states stay put."""
    body = job.body
    if body["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
        return
    job.polls += 1
    if job.cancelled:
        body["state"] = "JOB_STATE_CANCELLED"
    elif job.polls < len(PROGRESSION):
        body["state"] = PROGRESSION[job.polls]
    elif job.fail_with is not None:
        body["state"] = "JOB_STATE_FAILED"
        body["error"] = {"code": 3, "message": job.fail_with}
    else:
        project, location, job_id = body["name"].split("/")[1::2]
        body["state"] = "JOB_STATE_SUCCEEDED"
        body["tunedModel"] = {
            "model": f"projects/{project}/locations/{location}/models/{int(job_id) + 7000}@1",
            "endpoint": f"projects/{project}/locations/{location}/endpoints/{int(job_id) + 9000}",
        }
    body["updateTime"] = _now()


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}}


def _now() -> str:
    now = time.time()  # microseconds, as Vertex gives them: jobs created in one second still sort by age
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


class _Handler(BaseHTTPRequestHandler):
    emulator: VertexEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        emu = self.emulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        emu.requests.append((method, self.path))
        fault = emu._take_fault(method)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status:
            return self._send(*_error(fault.status, f"Injected failure {fault.status}."))
        if emu.require_auth and not (self.headers.get("Authorization") or "").startswith("Bearer "):
            return self._send(*_error(401, "Request is missing required authentication credential."))
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return self._send(*_error(400, "Invalid JSON payload."))
        if m := _CREATE.match(url.path):
            if method == "GET":
                return self._send(*emu._list(f"projects/{m[1]}/locations/{m[2]}/tuningJobs", query))
            status, out = emu._create(m[1], m[2], body)
            if status == 200 and emu.hang_after_create:
                emu._released.wait()  # the job exists, the caller never hears about it
            if status == 200 and emu.fail_after_create:
                status, out = _error(emu.fail_after_create, "Injected failure after the job was stored.")
            return self._send(status, out)
        if (m := _GENERATE.match(url.path)) and method == "POST":
            return self._send(*emu._generate(m[1], body))
        if m := _JOB.match(url.path):
            if m[2] and method == "POST":
                return self._send(*emu._cancel(m[1]))
            if not m[2] and method == "GET":
                return self._send(*emu._get(m[1]))
        return self._send(*_error(404, f"No route for {method} {url.path}."))

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client was killed mid-request
            pass
