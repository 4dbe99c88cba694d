"""A small stateful emulator of OpenAI's fine-tuning endpoints (files, uploads, jobs), for the real `openai` SDK.

    with OpenAIEmulator() as emu:
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url); monkeypatch.setenv("OPENAI_API_KEY", emu.api_key)

Jobs move validating_files -> queued -> running -> succeeded one step per GET of the job (auto_advance=True).
Failure injection: inject(status, path_prefix, count), delay(path_prefix, seconds), deny_training (403
training_not_available), fail_jobs_with (the next jobs end failed with that error), hang_create ("before": block
without storing; "after": store the job, then block) so a test can kill the client mid-call.

Chat completions (evaluation) answer deterministically: `chat_reply(request) -> str | {"content", "tool_calls":
[{"name", "arguments"}]}` decides the reply (default: "echo: <last user text>"); a fine-tuned id ("ft:...") that no
succeeded job produced is a 404 model_not_found, like OpenAI; every request body is kept in `chat_requests`.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

NEXT_STATE = {"validating_files": "queued", "queued": "running", "running": "succeeded"}


class OpenAIEmulator:
    def __init__(self, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self.lock = threading.RLock()
        self.files: dict[str, dict[str, Any]] = {}
        self.file_bytes: dict[str, bytes] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.parts: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.auto_advance = True
        self.deny_training = False
        self.fail_jobs_with: tuple[str, str] | None = None
        self.hang_create: str | None = None
        self.create_attempts = 0  # POST /fine_tuning/jobs seen (hung ones included)
        self.chat_reply: Callable[[dict[str, Any]], str | dict[str, Any]] | None = None
        self.chat_requests: list[dict[str, Any]] = []  # POST /chat/completions bodies that reached a model
        self._faults: list[list[Any]] = []  # [method|None, path_prefix, status, remaining]
        self._delays: dict[str, float] = {}
        self._release = threading.Event()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> OpenAIEmulator:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OpenAIEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "emulator not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": self.api_key}

    # controls
    def inject(self, status: int, path_prefix: str, count: int = 1, method: str | None = None) -> None:
        """The next `count` requests whose path starts with /v1<path_prefix> answer `status`."""
        with self.lock:
            self._faults.append([method, "/v1" + path_prefix, status, count])

    def delay(self, path_prefix: str, seconds: float) -> None:
        self._delays["/v1" + path_prefix] = seconds

    def release(self) -> None:
        """Unblock hung requests (hang_create) without stopping the server."""
        self._release.set()

    def jobs_for_key(self, key: str) -> list[dict[str, Any]]:
        with self.lock:
            return [j for j in self.jobs.values() if (j.get("metadata") or {}).get("ftlib_job_key") == key]

    def advance(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs[job_id]
            nxt = NEXT_STATE.get(job["status"])
            if nxt == "succeeded" and job.get("_fail"):
                code, message = job["_fail"]
                job.update(status="failed", error={"code": code, "message": message, "param": None},
                           finished_at=int(time.time()))
            elif nxt == "succeeded":
                job.update(status="succeeded", finished_at=int(time.time()),
                           fine_tuned_model=f"ft:{job['model']}:ftlib:{job.get('suffix') or ''}:{job_id}",
                           trained_tokens=len(self.file_bytes.get(job["training_file"], b"")) // 4)
            elif nxt:
                job["status"] = nxt
            self._event(job_id, f"Job status: {job['status']}")
            return job

    def _event(self, job_id: str, message: str) -> None:
        events = self.events.setdefault(job_id, [])
        events.append({"id": f"ftevent-{job_id}-{len(events)}", "object": "fine_tuning.job.event",
                       "created_at": int(time.time()), "level": "info", "message": message, "type": "message"})

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):06d}"

    # request handling (called from handler threads)
    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: bytes) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
            for fault in self._faults:
                if fault[3] > 0 and path.startswith(fault[1]) and fault[0] in (None, method):
                    fault[3] -= 1
                    return fault[2], _error(f"injected HTTP {fault[2]}", "injected_fault")
        for prefix, seconds in self._delays.items():
            if path.startswith(prefix):
                time.sleep(seconds)
        if headers.get("Authorization") != f"Bearer {self.api_key}" and headers.get("api-key") != self.api_key:
            return 401, _error("Incorrect API key provided", "invalid_api_key")
        for pattern, (verb, fn) in _ROUTES:
            m = re.fullmatch(pattern, path)
            if m and verb == method:
                return fn(self, m, query, headers, body)
        return 404, _error(f"no route {method} {path}", "not_found")

    # files
    def _files_create(self, m: Any, q: Any, headers: Any, body: bytes) -> tuple[int, Any]:
        form = _multipart(headers.get("Content-Type", ""), body)
        if "file" not in form or form.get("purpose", (None, b""))[1] != b"fine-tune":
            return 400, _error("file and purpose=fine-tune are required", "invalid_request")
        name, data = form["file"]
        with self.lock:
            return 200, self._store_file(name or "upload.jsonl", data)

    def _store_file(self, name: str, data: bytes) -> dict[str, Any]:
        fid = self._new_id("file")
        self.file_bytes[fid] = data
        self.files[fid] = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                           "filename": name, "purpose": "fine-tune", "status": "processed"}
        return self.files[fid]

    def _files_list(self, m: Any, q: dict[str, list[str]], headers: Any, body: bytes) -> tuple[int, Any]:
        purpose = q.get("purpose", [None])[0]
        with self.lock:
            data = [f for f in self.files.values() if purpose in (None, f["purpose"])]
        return 200, {"object": "list", "data": data, "has_more": False}

    def _files_get(self, m: Any, q: Any, headers: Any, body: bytes) -> tuple[int, Any]:
        f = self.files.get(m["id"])
        return (200, f) if f else (404, _error(f"No such File object: {m['id']}", "not_found"))

    # uploads
    def _upload_create(self, m: Any, q: Any, headers: Any, body: bytes) -> tuple[int, Any]:
        req = json.loads(body or b"{}")
        with self.lock:
            uid = self._new_id("upload")
            self.uploads[uid] = {"id": uid, "object": "upload", "bytes": req["bytes"], "filename": req["filename"],
                                 "purpose": req["purpose"], "status": "pending", "created_at": int(time.time()),
                                 "expires_at": int(time.time()) + 3600, "file": None, "_parts": []}
            return 200, _public(self.uploads[uid])

    def _upload_part(self, m: Any, q: Any, headers: Any, body: bytes) -> tuple[int, Any]:
        form = _multipart(headers.get("Content-Type", ""), body)
        with self.lock:
            up = self.uploads.get(m["id"])
            if up is None or up["status"] != "pending":
                return 404, _error(f"no pending upload {m['id']}", "not_found")
            pid = self._new_id("part")
            self.parts[pid] = form["data"][1]
            up["_parts"].append(pid)
            return 200, {"id": pid, "object": "upload.part", "upload_id": up["id"], "created_at": int(time.time())}

    def _upload_complete(self, m: Any, q: Any, headers: Any, body: bytes) -> tuple[int, Any]:
        req = json.loads(body or b"{}")
        with self.lock:
            up = self.uploads.get(m["id"])
            if up is None:
                return 404, _error(f"no upload {m['id']}", "not_found")
            data = b"".join(self.parts[p] for p in req["part_ids"])
            if len(data) != up["bytes"]:
                return 400, _error(f"upload has {len(data)} bytes, expected {up['bytes']}", "invalid_request")
            if req.get("md5") and hashlib.md5(data).hexdigest() != req["md5"]:
                return 400, _error("md5 mismatch", "invalid_request")
            up.update(status="completed", file=self._store_file(up["filename"], data))
            return 200, _public(up)

    # jobs
    def _jobs_create(self, m: Any, q: Any, headers: Any, body: bytes) -> tuple[int, Any]:
        req = json.loads(body or b"{}")
        with self.lock:
            self.create_attempts += 1
            if self.hang_create == "before":
                hang = True
            elif self.deny_training:
                return 403, _error("Fine-tuning is not available for this organization.", "training_not_available")
            else:
                hang = False
            if not hang:
                for field in ("training_file", "validation_file"):
                    if req.get(field) and req[field] not in self.files:
                        return 400, _error(f"invalid {field}: {req[field]}", "invalid_file", field)
                if len(req.get("suffix") or "") > 64:
                    return 400, _error("suffix longer than 64 characters", "invalid_request", "suffix")
                job = self._store_job(req)
                hang = self.hang_create == "after"
        if hang:
            self._release.wait()
            if self.hang_create == "before":
                return 503, _error("emulator released a hung request", "hung")
        return 200, _public(job)

    def _store_job(self, req: dict[str, Any]) -> dict[str, Any]:
        jid = self._new_id("ftjob")
        method = req.get("method") or {"type": "supervised", "supervised": {"hyperparameters": {}}}
        self.jobs[jid] = {
            "id": jid, "object": "fine_tuning.job", "created_at": int(time.time()), "error": None,
            "fine_tuned_model": None, "finished_at": None, "model": req["model"], "organization_id": "org-emu",
            "result_files": [], "seed": req.get("seed", 42), "status": "validating_files", "trained_tokens": None,
            "training_file": req["training_file"], "validation_file": req.get("validation_file"),
            "hyperparameters": (method.get(method["type"]) or {}).get("hyperparameters", {}),
            "method": method, "metadata": req.get("metadata"), "suffix": req.get("suffix"),
            "integrations": None, "estimated_finish": None, "_fail": self.fail_jobs_with,
        }
        self._event(jid, "Created fine-tuning job")
        return self.jobs[jid]

    def _jobs_list(self, m: Any, q: dict[str, list[str]], headers: Any, body: bytes) -> tuple[int, Any]:
        wanted = {k[len("metadata["):-1]: v[0] for k, v in q.items() if k.startswith("metadata[")}
        limit = int(q.get("limit", ["20"])[0])
        with self.lock:
            jobs = [j for j in reversed(self.jobs.values())
                    if all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
        after = q.get("after", [None])[0]
        if after:
            ids = [j["id"] for j in jobs]
            jobs = jobs[ids.index(after) + 1:] if after in ids else []
        return 200, {"object": "list", "data": [_public(j) for j in jobs[:limit]], "has_more": len(jobs) > limit}

    def _jobs_get(self, m: Any, q: Any, headers: Any, body: bytes) -> tuple[int, Any]:
        with self.lock:
            if m["id"] not in self.jobs:
                return 404, _error(f"No such fine-tuning job: {m['id']}", "not_found")
            job = self.advance(m["id"]) if self.auto_advance else self.jobs[m["id"]]
            return 200, _public(job)

    def _jobs_cancel(self, m: Any, q: Any, headers: Any, body: bytes) -> tuple[int, Any]:
        with self.lock:
            job = self.jobs.get(m["id"])
            if job is None:
                return 404, _error(f"No such fine-tuning job: {m['id']}", "not_found")
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return 400, _error(f"job {m['id']} is already {job['status']}", "invalid_request")
            job.update(status="cancelled", finished_at=int(time.time()))
            self._event(m["id"], "Job cancelled")
            return 200, _public(job)

    def _jobs_events(self, m: Any, q: Any, headers: Any, body: bytes) -> tuple[int, Any]:
        with self.lock:
            events = list(reversed(self.events.get(m["id"], [])))
        return 200, {"object": "list", "data": events, "has_more": False}


    # chat completions (evaluation of tuned models)
    def _chat(self, m: Any, q: Any, headers: Any, body: bytes) -> tuple[int, Any]:
        req = json.loads(body or b"{}")
        model = m.groupdict().get("deployment") or req.get("model") or ""  # Azure: the deployment in the path
        with self.lock:
            tuned = {j["fine_tuned_model"] for j in self.jobs.values() if j.get("fine_tuned_model")}
            if model.startswith("ft:") and model not in tuned:
                return 404, _error(f"The model `{model}` does not exist or you do not have access to it.",
                                   "model_not_found")
            self.chat_requests.append(req)
            n = len(self.chat_requests)
        last = next((x.get("content") for x in reversed(req.get("messages") or []) if x.get("role") == "user"), "")
        answer = self.chat_reply(req) if self.chat_reply else f"echo: {last}"
        answer = {"content": answer} if isinstance(answer, str) else answer
        message: dict[str, Any] = {"role": "assistant", "content": answer.get("content"), "refusal": None}
        if answer.get("tool_calls"):
            message["tool_calls"] = [{"id": f"call_{n}_{i}", "type": "function",
                                      "function": {"name": c["name"], "arguments": c["arguments"]}}
                                     for i, c in enumerate(answer["tool_calls"])]
        prompt_tokens = sum(len(str(x.get("content") or "").split()) + 3 for x in req.get("messages") or [])
        completion_tokens = len(str(answer.get("content") or "").split()) + 1
        finish = "tool_calls" if answer.get("tool_calls") else "stop"
        return 200, {"id": f"chatcmpl-{n:06d}", "object": "chat.completion", "created": int(time.time()),
                     "model": model, "choices": [{"index": 0, "message": message, "logprobs": None,
                                                  "finish_reason": finish}],
                     "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                               "total_tokens": prompt_tokens + completion_tokens}}


_ROUTES: list[tuple[str, tuple[str, Any]]] = [
    (r"/v1/chat/completions", ("POST", OpenAIEmulator._chat)),
    (r"/openai/deployments/(?P<deployment>[^/]+)/chat/completions", ("POST", OpenAIEmulator._chat)),  # Azure
    (r"/v1/files", ("POST", OpenAIEmulator._files_create)),
    (r"/v1/files", ("GET", OpenAIEmulator._files_list)),
    (r"/v1/files/(?P<id>[^/]+)", ("GET", OpenAIEmulator._files_get)),
    (r"/v1/uploads", ("POST", OpenAIEmulator._upload_create)),
    (r"/v1/uploads/(?P<id>[^/]+)/parts", ("POST", OpenAIEmulator._upload_part)),
    (r"/v1/uploads/(?P<id>[^/]+)/complete", ("POST", OpenAIEmulator._upload_complete)),
    (r"/v1/fine_tuning/jobs", ("POST", OpenAIEmulator._jobs_create)),
    (r"/v1/fine_tuning/jobs", ("GET", OpenAIEmulator._jobs_list)),
    (r"/v1/fine_tuning/jobs/(?P<id>[^/]+)", ("GET", OpenAIEmulator._jobs_get)),
    (r"/v1/fine_tuning/jobs/(?P<id>[^/]+)/cancel", ("POST", OpenAIEmulator._jobs_cancel)),
    (r"/v1/fine_tuning/jobs/(?P<id>[^/]+)/events", ("GET", OpenAIEmulator._jobs_events)),
]


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _error(message: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """{field: (filename, bytes)} from a multipart/form-data body (stdlib email parser: no cgi module)."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        out[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return out


def _handler(emu: OpenAIEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = emu.handle(self.command, url.path, parse_qs(url.query), self.headers, body)
            data = json.dumps(payload).encode()
            with contextlib.suppress(OSError):  # the client was killed mid-request (crash tests)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status in (429, 500, 502, 503):
                    self.send_header("retry-after-ms", "10")  # keeps the SDK's own retries fast in tests
                self.end_headers()
                self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    return Handler


def _main() -> None:  # pragma: no cover - manual use: python -m tests.emulators.openai_server
    emu = OpenAIEmulator().start()
    print(f"OPENAI_BASE_URL={emu.base_url} OPENAI_API_KEY={emu.api_key}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    _main()
