"""Evaluating tuned models (ftlib.evaluate), as a user drives it: every backend through its real SDK against the
emulators on 127.0.0.1 (OpenAI and Azure OpenAI chat completions, Vertex generateContent, Claude on Bedrock through
anthropic.AnthropicBedrock and moto), the local adapter with the tiny model, and `dvc metrics diff` across a retrain.
Calls are counted at the emulators: a first run makes N, a second run 0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from emulators.moto_server import moto_aws, moto_url  # noqa: F401  (fixtures)
from emulators.openai_server import OpenAIEmulator
from emulators.vertex_server import VertexEmulator

from ftlib import targets
from ftlib.errors import ConfigError, ProviderError
from ftlib.evaluate import evalset, evaluate, scoring
from ftlib.evaluate.generator import ModelUnavailable, Reply
from ftlib.finetune import plan_or_submit
from ftlib.jobs.ledger import Ledger
from ftlib.jobs.submit import Poll
from ftlib.records import Message, ToolCall

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "sk-test-never-log-me-3c1d"
FAST = Poll(0.01, 1.5, 0.05)
SYSTEM = {"role": "system", "content": "You are Ledgerly's support assistant."}
LOOKUP = {"type": "function", "function": {"name": "lookup_invoice", "description": "Find an invoice",
                                           "parameters": {"type": "object",
                                                          "properties": {"invoice": {"type": "string"}}}}}


# -- the eval set: text, JSON and tool-call answers --------------------------------------------------------------------

def chat(question: str, answer: str | None = None, call: dict[str, Any] | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"role": "assistant", "content": answer or ""}
    line: dict[str, Any] = {"messages": [SYSTEM, {"role": "user", "content": question}, reply]}
    if call:
        reply["tool_calls"] = [{"id": "call_1", "type": "function",
                                "function": {"name": call["name"], "arguments": json.dumps(call["args"])}}]
        line["tools"] = [LOOKUP]
    return line


HELD_OUT = [
    chat("How do I reset my password?", "Open Settings, then Security, and click Reset password."),
    chat("Can I pay by bank transfer?", "Yes, choose Bank transfer at checkout."),
    chat("Where are my receipts?", "Receipts are under Billing, then History."),
    chat("Give invoice INV-7 as JSON", '{"id": "INV-7", "total": 40}'),
    chat("Give invoice INV-8 as JSON", '{"id": "INV-8", "total": 15}'),
    chat("What is on invoice INV-9?", call={"name": "lookup_invoice", "args": {"invoice": "INV-9"}}),
]
# What a well-tuned model answers: two texts exactly, one loosely; one JSON right, one wrong but in a code fence;
# the tool call right.
GOOD = {
    "How do I reset my password?": "Open Settings, then Security, and click Reset password.",
    "Can I pay by bank transfer?": "Yes, choose Bank transfer at checkout.",
    "Where are my receipts?": "You find receipts in Billing.",
    "Give invoice INV-7 as JSON": '{"total": 40, "id": "INV-7"}',
    "Give invoice INV-8 as JSON": '```json\n{"id": "INV-8", "total": 99}\n```',
    "What is on invoice INV-9?": {"tool_calls": [{"name": "lookup_invoice", "arguments": '{"invoice": "INV-9"}'}]},
}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def project(root: Path, *, submit: bool = True, extra: dict[str, Any] | None = None) -> Path:
    """A project folder: an OpenAI export (train + held-out validation) and params.yaml."""
    write_jsonl(root / "build/export/openai/train.jsonl", [chat(f"Question {i}?", f"Answer {i}.") for i in range(12)])
    write_jsonl(root / "build/export/openai/validation.jsonl", HELD_OUT)
    params = {"launch": {"submit": submit, "wait": True},
              "finetune": {"openai": {"export": "openai", "method": "supervised",
                                      "hyperparameters": {"n_epochs": 1}, "attempt": 0, "max_retries": 3}},
              "evaluate": {"max_tokens": 256, "concurrency": 3, **(extra or {})}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def params_of(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "params.yaml").read_text())


def train(root: Path) -> str:
    """A real job on the emulator, waited for: the ledger then holds the fine-tuned model id."""
    settings = params_of(root)["finetune"]["openai"]
    result = plan_or_submit(root / "build/export/openai", "openai", settings, submit=True, wait=True,
                            models_dir=root / "models", poll=FAST)
    return result["job"]["model_id"]


def answer(emu: OpenAIEmulator, good_model: str | None = None) -> None:
    """The emulator answers like a tuned model for `good_model` (every model when None), else unhelpfully."""
    def reply(req: dict[str, Any]) -> Any:
        question = next(m["content"] for m in reversed(req["messages"]) if m["role"] == "user")
        if good_model is None or req["model"] == good_model:
            return GOOD[question]
        return "I do not know."
    emu.chat_reply = reply


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIEmulator]:
    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    with OpenAIEmulator(api_key=SECRET) as e:
        for var, value in e.env().items():
            monkeypatch.setenv(var, value)
        yield e


def ftlib(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {}), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(BIN / "ftlib"), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=120)


def read(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


# -- scoring and the eval set (pure) -----------------------------------------------------------------------------------

def test_scores_fit_the_reference() -> None:
    text = scoring.score(Message("assistant", "Open Settings and click Reset."),
                         Reply("open settings, click reset"))
    assert text["kind"] == "text" and text["exact_match"] == 0.0
    assert text["token_f1"] == pytest.approx(2 * 0.8 * 1.0 / 1.8, abs=1e-6)  # 4 of 5 reference words, all 4 replied
    assert scoring.score(Message("assistant", "Grüße aus Köln"), Reply("Grüße aus Köln"))["token_f1"] == 1.0
    assert scoring.score(Message("assistant", "Déjà vu"), Reply("Hello"))["token_f1"] == 0.0  # non-ASCII counts

    ref = Message("assistant", '{"id": "INV-7", "total": 40}')
    assert scoring.score(ref, Reply('```json\n{"total": 40, "id": "INV-7"}\n```'))["match"] == 1.0
    bad = scoring.score(ref, Reply("Sure! here it is: {id: INV-7}"))
    assert (bad["kind"], bad["parse_rate"], bad["match"], bad["score"]) == ("json", 0.0, 0.0, 0.0)
    schema = scoring.schema_validator({"type": "object", "required": ["id", "total"],
                                       "properties": {"total": {"type": "number"}}})
    assert scoring.score(ref, Reply('{"id": "X", "total": "forty"}'), schema)["schema_valid"] == 0.0

    call = Message("assistant", tool_calls=(ToolCall("c1", "lookup_invoice", '{"invoice": "INV-9"}'),))
    assert scoring.score(call, Reply(tool_calls=(("lookup_invoice", '{ "invoice":"INV-9" }'),)))["score"] == 1.0
    half = scoring.score(call, Reply(tool_calls=(("lookup_invoice", '{"invoice": "INV-1"}'),)))
    assert (half["name_match"], half["args_match"], half["score"]) == (1.0, 0.0, 0.5)
    assert scoring.score(call, Reply("I will look it up"))["score"] == 0.0

    rows = [scoring.score(ref, Reply('{"id": "INV-7", "total": 40}')), text]
    summary = scoring.summarize(rows)
    assert summary["examples"] == 2 and summary["json"] == {"examples": 1, "parse_rate": 1.0, "match": 1.0}
    assert scoring.gain(summary, {**summary, "score": 0.25})["score"] == round(summary["score"] - 0.25, 6)


def test_eval_set_is_test_else_validation_cut_at_the_last_assistant_turn(tmp_path: Path) -> None:
    export = tmp_path / "export"
    write_jsonl(export / "validation.jsonl", HELD_OUT)
    data = evalset.load(export, "openai", "sft")
    assert data.split == "validation" and len(data.cases) == len(HELD_OUT)
    first = data.cases[0]
    assert [m.role for m in first.prompt.messages] == ["system", "user"]
    assert first.reference.content.startswith("Open Settings") and first.source == "validation.jsonl:1"
    assert data.cases[5].reference.tool_calls[0].name == "lookup_invoice" and data.cases[5].prompt.tools
    multi = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                          {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye!"}]}
    no_reply = {"messages": [{"role": "assistant", "content": "Welcome!"}, {"role": "user", "content": "Hi"}]}
    write_jsonl(export / "test.jsonl", [multi, no_reply])
    data = evalset.load(export, "openai", "sft")
    assert data.split == "test" and len(data.cases) == 1
    assert [m.content for m in data.cases[0].prompt.messages] == ["Hi", "Hello!", "Bye"]
    assert data.cases[0].reference.content == "Goodbye!"
    assert [i.source for i in data.skipped] == ["test.jsonl:2"]  # listed, not silently dropped
    (export / "test.jsonl").unlink()
    (export / "validation.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"validation\.jsonl.*split\.ratios"):
        evalset.load(export, "openai", "sft")


def test_settings_are_checked_with_the_fix(tmp_path: Path) -> None:
    root = project(tmp_path, extra={"temprature": 0.2})
    with pytest.raises(ValueError, match=r"evaluate\.temprature is not a setting; use one of: .*temperature"):
        evaluate(root / "build/export/openai", "openai", params_of(root), submit=False, project=root)
    root = project(tmp_path, extra={"openai": {"concurrency": 0}})
    with pytest.raises(ValueError, match=r"evaluate\.openai\.concurrency=0: input should be greater than"):
        evaluate(root / "build/export/openai", "openai", params_of(root), submit=False, project=root)
    root = project(tmp_path, extra={"openai": {"provisioned": {}}})
    with pytest.raises(ValueError, match=r"evaluate\.openai\.provisioned is not a setting for openai"):
        evaluate(root / "build/export/openai", "openai", params_of(root), submit=False, project=root)


# -- OpenAI through the real SDK ---------------------------------------------------------------------------------------

def test_plan_then_evaluate_then_nothing_to_call(tmp_path: Path, emu: OpenAIEmulator) -> None:
    root = project(tmp_path, submit=False)
    answer(emu)
    out = "reports/eval/openai.json"

    before = ftlib(root, "evaluate", "build/export/openai", "--provider", "openai", "--out", out)
    assert before.returncode == 0, before.stderr
    assert "no model yet: no job for key" in before.stderr and "6 call(s)" in before.stderr
    assert read(root / out)["evaluated"] is False and emu.chat_requests == []

    model = train(root)
    plan = ftlib(root, "evaluate", "build/export/openai", "--provider", "openai", "--out", out)
    assert plan.returncode == 0, plan.stderr
    assert "plan mode (launch.submit is false)" in plan.stderr and f"tuned model {model}: 6 call(s)" in plan.stderr
    assert "about $0.0" in plan.stderr and "not evaluated; 6 call(s) needed, about $" in plan.stdout
    report = read(root / out)
    assert report["plan"]["calls"] == 6 and report["plan"]["estimated_cost_usd"] > 0 and emu.chat_requests == []
    assert (root / "reports/eval/openai.examples.jsonl").read_bytes() == b""

    run = ftlib(root, "evaluate", "build/export/openai", "--provider", "openai", "--out", out, "--submit")
    assert run.returncode == 0, run.stderr
    assert len(emu.chat_requests) == 6 and {r["model"] for r in emu.chat_requests} == {model}
    assert all("weight" not in m for r in emu.chat_requests for m in r["messages"])
    assert emu.chat_requests[-1]["max_completion_tokens"] == 256
    report = read(root / out)
    scores = report["scores"]
    assert report["evaluated"] is True and report["model_id"] == model and scores["examples"] == 6
    assert scores["text"]["examples"] == 3 and scores["text"]["exact_match"] == pytest.approx(2 / 3, abs=1e-6)
    assert scores["json"] == {"examples": 2, "parse_rate": 1.0, "match": 0.5}
    assert scores["tool_call"] == {"examples": 1, "name_match": 1.0, "args_match": 1.0}
    assert report["eval_set"]["sha256"] == hashlib_sha256(root / "build/export/openai/validation.jsonl")
    assert report["usage"]["input_tokens"] > 0 and report["cost_usd"] > 0
    rows = [orjson.loads(x) for x in (root / "reports/eval/openai.examples.jsonl").read_bytes().splitlines()]
    assert [r["score"] for r in rows] == sorted(r["score"] for r in rows)  # worst first
    assert rows[0]["source"] == "validation.jsonl:5" and rows[0]["reference"] == '{"id": "INV-8", "total": 15}'
    assert report["worst"][0] == {"source": "validation.jsonl:5", "score": 0.0}
    assert f"openai {model}: score {scores['score']} on 6 examples" in run.stdout

    # The score sits next to the model id and the dataset hash, and `ftlib models` shows it.
    record = next(r for r in Ledger(root / "models").records("openai") if r["model_id"] == model)
    assert record["eval_sha256"] == report["eval_set"]["sha256"]
    assert record["evaluation"]["score"] == scores["score"] and record["evaluation"]["examples"] == 6
    listed = json.loads(ftlib(root, "models", "--json").stdout)
    assert listed[0]["score"] == scores["score"] and listed[0]["eval_sha256"] == record["eval_sha256"]
    table = ftlib(root, "models").stdout
    assert record["dataset_sha256"][:12] in table and model in table and str(scores["score"]) in table

    # Spend once: a second run (submit or plan, CLI or library) asks nothing and writes the same bytes.
    first_bytes = (root / out).read_bytes(), (root / "reports/eval/openai.examples.jsonl").read_bytes()
    again = ftlib(root, "evaluate", "build/export/openai", "--provider", "openai", "--out", out, "--submit")
    assert again.returncode == 0 and "all replies from the cache" in again.stderr
    planned = evaluate(root / "build/export/openai", "openai", params_of(root), submit=False, project=root,
                       out=root / out)
    assert planned.calls == 0 and len(emu.chat_requests) == 6
    assert ((root / out).read_bytes(), (root / "reports/eval/openai.examples.jsonl").read_bytes()) == first_bytes
    assert SECRET not in (root / out).read_text() + run.stderr + run.stdout


def hashlib_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_job_still_running_is_a_clear_message(tmp_path: Path, emu: OpenAIEmulator) -> None:
    root = project(tmp_path)
    settings = params_of(root)["finetune"]["openai"]
    plan_or_submit(root / "build/export/openai", "openai", settings, submit=True, wait=False,
                   models_dir=root / "models")
    r = ftlib(root, "evaluate", "build/export/openai", "--provider", "openai", "--out", "reports/eval/openai.json")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "no model yet: job ftjob-" in r.stderr and "is submitted" in r.stderr and "ftlib status --key" in r.stderr
    assert emu.chat_requests == []


def test_sdk_retries_then_only_failed_prompts_are_asked_again(tmp_path: Path, emu: OpenAIEmulator) -> None:
    root = project(tmp_path)
    train(root)
    answer(emu)
    emu.inject(429, "/chat/completions", count=2)  # retried by the SDK itself (max_retries), invisible to the run
    emu.inject(400, "/chat/completions", count=1)  # a refusal of one prompt: not retried
    export, params = root / "build/export/openai", params_of(root)
    with pytest.raises(ProviderError, match=r"1 call\(s\) failed .*HTTP 400.*re-running asks only for the failed"):
        evaluate(export, "openai", params, submit=True, project=root, out=root / "reports/eval/openai.json")
    assert not (root / "reports/eval/openai.json").exists()  # all or nothing
    assert len(emu.chat_requests) == 5
    retry = evaluate(export, "openai", params, submit=True, project=root, out=root / "reports/eval/openai.json")
    assert retry.calls == 1 and len(emu.chat_requests) == 6 and retry.report["evaluated"]


def test_compare_base_shows_the_gain(tmp_path: Path, emu: OpenAIEmulator) -> None:
    root = project(tmp_path, extra={"compare_base": True})
    model = train(root)
    answer(emu, good_model=model)
    result = evaluate(root / "build/export/openai", "openai", params_of(root), submit=True, project=root,
                      out=root / "reports/eval/openai.json")
    report = result.report
    assert result.calls == 12 and {r["model"] for r in emu.chat_requests} == {model, "gpt-4o-mini-2024-07-18"}
    assert report["base"]["scores"]["score"] < report["scores"]["score"]
    assert report["gain"]["score"] == pytest.approx(report["scores"]["score"] - report["base"]["scores"]["score"])
    assert report["base"]["cost_usd"] < report["cost_usd"] * 2  # base answers are priced at base-model rates
    worst = orjson.loads((root / "reports/eval/openai.examples.jsonl").read_bytes().splitlines()[0])
    assert worst["base"]["reply"] == "I do not know." and "gain" in worst


def test_no_credentials_plans_and_a_deleted_model_stops_the_run(tmp_path: Path, emu: OpenAIEmulator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path)
    train(root)
    monkeypatch.delenv("OPENAI_API_KEY")
    plan = evaluate(root / "build/export/openai", "openai", params_of(root), submit=True, project=root)
    assert plan.report["evaluated"] is False and "OPENAI_API_KEY" in plan.report["reason"]
    assert plan.calls == 0 and emu.chat_requests == []
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with pytest.raises(ModelUnavailable, match="OpenAI has no model 'ft:gone'"):
        evaluate(root / "build/export/openai", "openai", params_of(root), submit=True, project=root,
                 model_id="ft:gone")
    asked = [path for _, path in emu.requests if path.endswith("/chat/completions")]
    assert 1 <= len(asked) <= 3  # the calls already in flight (concurrency 3), never all 6


def test_azure_openai_answers_through_its_deployment(tmp_path: Path, emu: OpenAIEmulator,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path)
    model = train(root)  # trained on OpenAI's API; now served by an Azure deployment of the same id
    answer(emu)
    monkeypatch.delenv("OPENAI_API_KEY")
    for var, value in {"AZURE_OPENAI_ENDPOINT": emu.base_url.removesuffix("/v1"), "AZURE_OPENAI_API_KEY": SECRET,
                       "OPENAI_API_VERSION": "2025-04-01-preview"}.items():
        monkeypatch.setenv(var, value)
    params = params_of(root)
    params["finetune"]["openai"]["azure"] = True
    with pytest.raises(ConfigError, match=r"deploy .* set evaluate\.openai\.deployment"):
        evaluate(root / "build/export/openai", "openai", params, submit=True, project=root)
    params["evaluate"]["openai"] = {"deployment": "ledgerly-ft"}
    result = evaluate(root / "build/export/openai", "openai", params, submit=True, project=root)
    assert result.report["evaluated"] and result.report["model_id"] == model and result.calls == 6
    assert {r["model"] for r in emu.chat_requests} == {"ledgerly-ft"}
    assert any(path == "/openai/deployments/ledgerly-ft/chat/completions" for _, path in emu.requests)


# -- Gemini on Vertex AI through google-genai --------------------------------------------------------------------------

VERTEX = {"project": "proj", "location": "us-central1", "retry_attempts": 4, "retry_initial_delay": 0.01,
          "retry_max_delay": 0.05, "retry_jitter": 0.0}
VERTEX_HELD_OUT = [
    {"systemInstruction": {"role": "system", "parts": [{"text": "Be brief."}]},
     "contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]},
                  {"role": "model", "parts": [{"text": "Paris."}]}]},
    {"contents": [{"role": "user", "parts": [{"text": "Find invoice INV-9"}]},
                  {"role": "model", "parts": [{"functionCall": {"name": "lookup_invoice",
                                                                "args": {"invoice": "INV-9"}}}]}],
     "tools": [{"functionDeclarations": [{"name": "lookup_invoice", "description": "Find an invoice",
                                          "parameters": {"type": "object",
                                                         "properties": {"invoice": {"type": "string"}}}}]}]},
]


def test_vertex_generate_content_on_the_tuned_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.oauth2.credentials import Credentials

    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(var, raising=False)
    export = tmp_path / "build/export/gemini"
    write_jsonl(export / "train.jsonl", VERTEX_HELD_OUT * 3)
    write_jsonl(export / "validation.jsonl", VERTEX_HELD_OUT)
    params = {"finetune": {"gemini": {"export": "gemini", "hyperparameters": {"epoch_count": 1}, **VERTEX}},
              "evaluate": {"compare_base": True}}
    creds = {"credentials": Credentials(token="test-token")}
    with VertexEmulator() as vertex:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", vertex.url)
        from ftlib.finetune import build_spec
        from ftlib.targets.gemini.backend import VertexBackend

        backend = VertexBackend({**VERTEX, "gcs_uri": "gs://b/t"}, credentials=creds["credentials"])
        spec, _ = build_spec(export, targets.get("gemini"), params["finetune"]["gemini"])
        job_id = backend.create_job(spec, "gs://b/t/train.jsonl", None)
        while (status := backend.get_job(job_id)).model_id is None:
            pass
        Ledger(tmp_path / "models").update("gemini", spec.key, provider="gemini", job_key=spec.key, job_id=job_id,
                                           status="succeeded", model_id=status.model_id, method="supervised",
                                           base_model=spec.base_model, dataset_sha256=spec.train_sha256)
        vertex.fail_next(1, 503, method="POST")  # retried by the SDK's HttpRetryOptions
        vertex.content_reply = lambda body: (
            {"function_calls": [{"name": "lookup_invoice", "args": {"invoice": "INV-9"}}]} if body.get("tools")
            else "Paris.")
        first = evaluate(export, "gemini", params, submit=True, project=tmp_path, generator_options=creds,
                         out=tmp_path / "reports/eval/gemini.json")
        again = evaluate(export, "gemini", params, submit=True, project=tmp_path, generator_options=creds)
    models = [m for m, _ in vertex.generate_requests]
    assert status.model_id.startswith("projects/proj/locations/us-central1/endpoints/")
    assert sorted(set(models)) == sorted({status.model_id,
                                          "projects/proj/locations/us-central1/publishers/google/models/"
                                          "gemini-2.5-flash"})
    assert first.calls == 4 and again.calls == 0 and len(models) == 4
    body = next(b for m, b in vertex.generate_requests if b.get("tools"))
    assert body["tools"][0]["functionDeclarations"][0]["name"] == "lookup_invoice"
    assert next(b for m, b in vertex.generate_requests if not b.get("tools"))["systemInstruction"]["parts"] == [
        {"text": "Be brief."}]
    scores = first.report["scores"]
    assert scores["score"] == 1.0 and scores["tool_call"]["args_match"] == 1.0 and first.report["gain"]["score"] == 0
    assert first.report["usage"]["input_tokens"] > 0 and first.report["cost_usd"] is not None


# -- Claude on Bedrock through anthropic.AnthropicBedrock (moto) -------------------------------------------------------

BEDROCK_HELD_OUT = [
    {"system": "Be brief.", "messages": [{"role": "user", "content": "Capital of France?"},
                                         {"role": "assistant", "content": "Paris."}]},
    {"messages": [{"role": "user", "content": "Capital of Italy?"}, {"role": "assistant", "content": "Rome."}]},
]


@pytest.fixture
def claude_on_moto(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:  # noqa: F811
    """moto serves bedrock-runtime InvokeModel but always answers `{}` (moto/bedrockruntime/models.py); give its
    backend a deterministic Claude reply, so the real AnthropicBedrock client speaks HTTP + SigV4 to moto's server."""
    from moto.bedrockruntime.models import BedrockRuntimeBackend

    seen: list[dict[str, Any]] = []

    def invoke_model(self: Any, payload: dict[str, Any], model_id: str) -> dict[str, Any]:
        seen.append({"model": model_id, **payload})
        question = payload["messages"][-1]["content"]
        text = {"Capital of France?": "Paris.", "Capital of Italy?": "Milan."}[question]
        return {"id": f"msg_{len(seen)}", "type": "message", "role": "assistant", "model": model_id,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 3}}

    monkeypatch.setattr(BedrockRuntimeBackend, "invoke_model", invoke_model)
    return seen


def test_claude_custom_model_through_anthropic_bedrock(tmp_path: Path, claude_on_moto: list[dict[str, Any]]) -> None:
    export = tmp_path / "build/export/anthropic"
    write_jsonl(export / "train.jsonl", BEDROCK_HELD_OUT * 20)
    write_jsonl(export / "validation.jsonl", BEDROCK_HELD_OUT)
    model = "arn:aws:bedrock:us-west-2:123456789012:custom-model/ftlib-abc/x1"
    provisioned = "arn:aws:bedrock:us-west-2:123456789012:provisioned-model/pt1"
    params: dict[str, Any] = {"finetune": {"anthropic": {"export": "anthropic", "region": "us-west-2"}},
                              "evaluate": {}}
    # No Provisioned Throughput known for the model: a plan naming the fix (the pipeline is not failed for it),
    # written before any InvokeModel.
    unserved = evaluate(export, "anthropic", params, submit=True, project=tmp_path, model_id=model)
    assert unserved.report["evaluated"] is False and "Provisioned Throughput" in unserved.report["reason"]
    assert unserved.calls == 0 and claude_on_moto == []
    params["evaluate"]["anthropic"] = {"provisioned": {model: provisioned}}
    plan = evaluate(export, "anthropic", params, submit=False, project=tmp_path, model_id=model)
    assert plan.report["plan"]["calls"] == 2
    assert plan.report["plan"]["estimated_cost_usd"] is None  # Provisioned Throughput: hourly, not per token
    first = evaluate(export, "anthropic", params, submit=True, project=tmp_path, model_id=model,
                     out=tmp_path / "reports/eval/anthropic.json")
    again = evaluate(export, "anthropic", params, submit=True, project=tmp_path, model_id=model)
    assert first.calls == 2 and again.calls == 0 and len(claude_on_moto) == 2
    assert {c["model"] for c in claude_on_moto} == {provisioned}
    france = next(c for c in claude_on_moto if c["messages"][-1]["content"] == "Capital of France?")
    assert france["system"] == "Be brief." and france["anthropic_version"]
    assert france["temperature"] == 0.0 and france["max_tokens"] == 512
    scores = first.report["scores"]
    assert scores["text"]["exact_match"] == 0.5 and first.report["usage"] == {"input_tokens": 24, "output_tokens": 6}


# -- `dvc metrics diff`: did retraining help? --------------------------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    r = subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    r = subprocess.run([str(BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"dvc {' '.join(args)}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def dvc_project(repo: Path) -> tuple[Path, dict[str, Any]]:
    """A git + DVC repo with the project's own finetune and evaluate stages (and the code they depend on)."""
    project(repo)
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {k: stages[k] for k in ("finetune", "evaluate")}}))
    shutil.copytree(ROOT / "ftlib", repo / "ftlib", ignore=shutil.ignore_patterns("__pycache__"))  # code deps
    (repo / "reports/validation").mkdir(parents=True)
    (repo / "reports/validation/openai.json").write_text("{}\n")
    params = params_of(repo)
    params["finetune"]["openai"]["poll_interval_s"] = 0.05
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(repo, "init", "-q")
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    return repo, params


@pytest.mark.integration
def test_dvc_metrics_diff_shows_whether_retraining_helped(tmp_path: Path, emu: OpenAIEmulator) -> None:
    """The project's own finetune and evaluate stages in a temporary git repo: train, evaluate, commit; retrain
    (attempt 1) to a better model; `dvc metrics diff` shows the score going up."""
    repo, params = dvc_project(tmp_path / "repo")
    answer(emu, good_model="")  # every model answers badly ...
    dvc(repo, "repro")
    first = read(repo / "reports/eval/openai.json")
    assert first["evaluated"] and len(emu.chat_requests) == 6
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first model")

    params["finetune"]["openai"]["attempt"] = 1  # retrain on the same data, to a model that answers well
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    bad = emu.chat_reply
    emu.chat_reply = lambda req: bad(req) if req["model"] == first["model_id"] else GOOD[req["messages"][-1]["content"]]
    dvc(repo, "repro")
    second = read(repo / "reports/eval/openai.json")
    assert second["model_id"] != first["model_id"] and len(emu.chat_requests) == 12
    diff = json.loads(dvc(repo, "metrics", "diff", "HEAD", "--json"))["reports/eval/openai.json"]
    assert diff["scores.score"]["old"] == first["scores"]["score"]
    assert diff["scores.score"]["new"] == second["scores"]["score"] and diff["scores.score"]["diff"] > 0.5
    assert diff["scores.tool_call.args_match"] == {"old": 0.0, "new": 1.0, "diff": 1.0}

    before = (repo / "reports/eval/openai.json").read_bytes()
    dvc(repo, "repro", "--force", "--single-item", "evaluate@openai")  # a forced re-run: zero calls, same bytes
    assert len(emu.chat_requests) == 12 and (repo / "reports/eval/openai.json").read_bytes() == before


# -- the local adapter with the tiny model -----------------------------------------------------------------------------

@pytest.mark.training
def test_local_adapter_answers_and_reports_its_loss(tmp_path: Path, tiny_model: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    from tiny_model import sft_examples

    from ftlib.finetune import build_spec
    from ftlib.targets.huggingface import generate, training

    monkeypatch.chdir(tmp_path)  # the model id names the adapter folder relative to the project, as the stage runs
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    export = Path("build/export/huggingface")
    write_jsonl(export / "train.jsonl", sft_examples(24))
    write_jsonl(export / "validation.jsonl", sft_examples(6))
    hp = {"max_steps": 6, "learning_rate": 5e-3, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
          "per_device_train_batch_size": 4, "max_length": 256, "save_steps": 100}
    settings = {"export": "huggingface", "base_model": str(tiny_model), "method": "supervised",
                "hyperparameters": hp, "seed": 7}
    params = {"finetune": {"local": settings}, "evaluate": {"max_tokens": 12, "compare_base": True}}
    target = targets.get("local")
    spec, _ = build_spec(export, target, settings, target.make_backend({}))
    run = Path(".ftlib/runs") / spec.key
    (run / "data").mkdir(parents=True)
    shutil.copy(export / "train.jsonl", run / "data/train.jsonl")
    full_hp = {**target.hyperparameters["supervised"]().model_dump(), **spec.hyperparameters}
    (run / "spec.json").write_text(json.dumps({"base_model": str(tiny_model), "method": "supervised", "seed": 7,
                                               "hyperparameters": full_hp, "train_file": "data/train.jsonl"}))
    training.run_training(run)  # a real LoRA adapter, trained on the CPU
    shutil.copytree(run / "adapter", "build/models/local/adapter")
    model = f"sha256:{training.adapter_sha256(run / 'adapter')}@build/models/local/adapter"  # as the backend names it
    Ledger(Path("models")).update("local", spec.key, provider="local", job_key=spec.key, job_id=spec.key,
                                  status="succeeded", model_id=model, method="supervised",
                                  base_model=str(tiny_model), base_model_revision=spec.base_model_revision,
                                  dataset_sha256=spec.train_sha256)
    calls: list[str] = []
    real = generate.LocalGenerator.generate
    monkeypatch.setattr(generate.LocalGenerator, "generate",
                        lambda self, m, p, s: calls.append(m) or real(self, m, p, s))

    first = evaluate(export, "local", params, submit=True, out=Path("reports/eval/local.json"))
    report = first.report
    assert first.calls == 12 and len(calls) == 12  # 6 prompts, tuned and base
    assert set(calls) == {"build/models/local/adapter", str(tiny_model)}
    assert report["evaluated"] and report["scores"]["examples"] == 6
    tuned, base = report["metrics"], report["base"]["metrics"]
    assert tuned["eval_loss"] < base["eval_loss"] and tuned["perplexity"] < base["perplexity"]  # training helped
    assert report["gain"]["metrics"]["eval_loss"] < 0 and tuned["tokens"] == base["tokens"] > 0
    assert report["cost_usd"] == 0.0
    again = evaluate(export, "local", params, submit=True, out=Path("reports/eval/local.json"))
    assert again.calls == 0 and len(calls) == 12 and again.report == report  # generation and loss both cached

    (Path("build/models/local/adapter") / "adapter_config.json").write_text("{}")  # other weights than the id names
    shutil.rmtree(".ftlib/eval")
    with pytest.raises(ModelUnavailable, match="holds another adapter"):
        evaluate(export, "local", params, submit=True)
    assert generate.parse_tool_calls('<tool_call>\n{"name": "lookup_order", "arguments": {"order_id": "A-1"}}\n'
                                     "</tool_call>") == ("", (("lookup_order", '{"order_id": "A-1"}'),))


# -- the Prefect flow --------------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_prefect_flow_evaluates_after_wait_and_dvc_makes_no_second_call(tmp_path: Path, emu: OpenAIEmulator) -> None:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    sys.path.insert(0, str(ROOT))  # `flows` is a folder at the repo root
    from flows import finetune_models

    repo, _ = dvc_project(tmp_path / "repo")
    answer(emu)
    os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(tmp_path / "prefect-results")
    try:
        with prefect_test_harness(server_startup_timeout=60), \
                temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            result = finetune_models(project_dir=str(repo), providers=["openai"], submit=True)

            async def table() -> Any:
                async with get_client() as client:
                    return next(a.data for a in await client.read_latest_artifacts(limit=50)
                                if a.key == "model-evaluations")

            rows = asyncio.run(table())
    finally:
        os.environ.pop("PREFECT_RESULTS_LOCAL_STORAGE_PATH", None)
    model = result["openai"]["job"]["model_id"]
    report = read(repo / "reports/eval/openai.json")  # written by DVC's evaluate stage, from the flow's replies
    assert report["evaluated"] and report["model_id"] == model
    assert len(emu.chat_requests) == 6  # the flow's evaluate task asked; the DVC stage after it asked nothing
    assert "up to date" in dvc(repo, "status")
    record = next(r for r in Ledger(repo / "models").records("openai") if r["model_id"] == model)
    assert record["evaluation"]["score"] == report["scores"]["score"]
    text = rows if isinstance(rows, str) else json.dumps(rows)
    assert model in text and str(report["scores"]["score"]) in text and report["eval_set"]["sha256"] in text
