"""Secrets: every string field of every record is scanned, disguises are undone, nothing echoes a matched value.

Measures and prints detection (variants caught / total) and false positives (sample data, benign ids, hashes,
UUIDs, base64), and the clean-path cost per example.
"""

from __future__ import annotations

import base64
import hashlib
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from ftlib import secret_scan
from ftlib.checks import Sink, check_secrets
from ftlib.records import Attachment, Example, Message, ToolCall
from ftlib.secret_scan import excerpt, find_secrets, redact
from ftlib.validate import check_basic

ROOT = Path(__file__).resolve().parent.parent

# Built at runtime so no literal key sits in the repository.
_OPENAI = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2
_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzqAMPLEKE1"
V = {
    "openai": _OPENAI,
    "openai_legacy": "sk-" + "Ab3dEf6hIj9kLm2nOp5q" + "T3BlbkFJ" + "Rs8tUv1wXy4zAb3dEf6h",
    "anthropic": "sk-ant-api03-" + "x7Yz" * 20 + "AA",
    "aws_id": "AKIA" + "Z3QJ5XK7PL2MN4RT",
    "aws_secret_env": "AWS_SECRET_ACCESS_KEY=" + _AWS_SECRET,
    "aws_secret_ini": "aws_secret_access_key = " + _AWS_SECRET,
    "aws_secret_json": '{"SecretAccessKey": "' + _AWS_SECRET + '"}',
    "private_key": "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END",
    "github": "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2,
    "github_pat": "github_pat_" + "11ABCDEFG0" + "x9Y8z7W6v5U4t3S2r1Q0p" * 3,
    "gitlab": "glpat-" + "xY12abCD34efGH56ijKL",
    "google": "AIza" + "SyD3x4mpl3K3yV4lu3Th4tIsF4k3qwertyu",
    "slack": "xoxb-" + "123456789012-123456789012-AbCdEfGhIjKlMnOp",
    "slack_webhook": "https://hooks.slack.com/services/" + "T0123ABCD/B0123ABCD/" + "aBcDeFgHiJkLmNoPqRsTuVwX",
    "jwt": "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0." + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "stripe": "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "huggingface": "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
    "npm": "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "npmrc": "//registry.npmjs.org/:_authToken=" + "npm_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8",
    "pypi": "pypi-AgEIcHlwaS5vcmc" + "Q" * 72,
    "sendgrid": "SG." + "aB3dE6gH9iJ2kL5mN8oP1q" + "." + "rS4tU7vW0xY3zA6bC9dE2fG5hI8jK1lM4nO7pQ0rS3t",
    "azure": "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=" + "Zm9vYmFy" * 11 + ";",
    "azure_sas": "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKey=" + "Q2hhbmdl" * 6,
    "url_https": "https://admin:" + "Sup3r-S3cret" + "@db.internal.example.com/admin",
    "url_postgres": "postgres://app:" + "hunter2hunter" + "@10.0.0.5:5432/prod",
    "password_eq": "login with password=" + "S3cr3t!Pass",
    "password_env": "DB_PASSWORD=" + "pr0d-Passw0rd-77",
    "password_json": '{"password": "' + "correct horse battery" + '"}',
    "api_key_eq": "curl 'https://api.example.com/v1?api_key=" + "9f8e7d6c5b4a39281706" + "'",
    "zero_width": "sk-\u200bproj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2,
    "unicode_hyphen": "sk\u2010proj\u2011" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2,
    "fullwidth": "".join(chr(ord(c) + 0xFEE0) for c in "ghp_") + "a1B2c3D4e5F6g7H8i9J0" * 2,
    "soft_hyphen": "glpat\u00ad-" + "xY12abCD34efGH56ijKL",
}
# Parts of each value that must never show up in any output (the value itself and a distinctive inner piece).
PLANTED = [v for v in V.values()] + ["Ab3dEf6hIj9kLm2n", "Z3QJ5XK7PL2MN4RT", _AWS_SECRET, "Sup3r-S3cret",
                                     "hunter2hunter", "S3cr3t!Pass", "correct horse battery", "a1B2c3D4e5F6g7H8"]


def _chat(**kw) -> Example:
    return Example(messages=(Message("user", "How do I connect?"), Message("assistant", "Like this.")), **kw)


def _tool_chat(call_id: str = "call_1", fn: str = "lookup", args: str = '{"id": 1}', tool_name: str | None = None,
               tools: tuple = ()) -> Example:
    return Example(messages=(
        Message("user", "Look it up"),
        Message("assistant", "", tool_calls=(ToolCall(call_id, fn, args),)),
        Message("tool", "found", tool_call_id=call_id, name=tool_name),
        Message("assistant", "Done."),
    ), tools=tools or ({"type": "function", "function": {"name": fn, "parameters": {"type": "object"}}},))


# (variant, field the issue must name, example): the issue's 40 cases and more.
VARIANTS: list[tuple[str, str, Callable[[], Example]]] = [
    *[(f"content:{k}", "messages[0].content", (lambda v=v: Example.from_turns(
        [("user", f"my config is {v} thanks"), ("assistant", "Please rotate it.")]))) for k, v in V.items()],
    ("system prompt", "messages[0].content", lambda: Example.from_pair("hi", "hello", system=f"Use {V['anthropic']}")),
    ("assistant reply", "messages[1].content", lambda: Example.from_pair("key?", f"It is {V['github']}")),
    ("thinking", "messages[1].thinking", lambda: Example(messages=(
        Message("user", "q"), Message("assistant", "a", thinking=f"token {V['slack']}")))),
    ("message name", "messages[0].name", lambda: Example(messages=(
        Message("user", "hi", name=V["openai"]), Message("assistant", "hello")))),
    ("tool_call_id", "messages[2].tool_call_id", lambda: _tool_chat(call_id=V["huggingface"])),
    ("tool call id", "messages[1].tool_calls[0].id", lambda: _tool_chat(call_id=V["gitlab"])),
    ("tool function name", "messages[1].tool_calls[0].name", lambda: _tool_chat(fn=V["npm"])),
    ("tool result name", "messages[2].name", lambda: _tool_chat(tool_name=V["stripe"])),
    ("tool arguments", "messages[1].tool_calls[0].arguments",
     lambda: _tool_chat(args=orjson.dumps({"dsn": V["url_postgres"]}).decode())),
    ("tool definition", "tools[0].function.description", lambda: _tool_chat(tools=(
        {"type": "function", "function": {"name": "lookup", "description": f"auth with {V['sendgrid']}"}},))),
    ("tool definition default", "tools[0].function.parameters.properties.key.default", lambda: _tool_chat(tools=(
        {"type": "function", "function": {"name": "lookup", "parameters": {
            "type": "object", "properties": {"key": {"type": "string", "default": V["aws_id"]}}}}},))),
    ("metadata value", "metadata.note", lambda: _chat(metadata={"note": V["aws_secret_env"]})),
    ("metadata nested", "metadata.env[1].value", lambda: _chat(metadata={"env": [
        {"value": "ok"}, {"value": V["azure"]}]})),
    ("metadata key", "metadata.<key>", lambda: _chat(metadata={V["openai"]: 1})),
    ("group", "group", lambda: _chat(group=V["url_https"])),
    ("image URL with password", "messages[0].attachments[0].uri", lambda: Example(messages=(
        Message("user", "see", attachments=(Attachment.from_uri(
            "https://bob:" + "Pa55-w0rd-9" + "@img.example.com/a.png"),)),
        Message("assistant", "a cat")))),
    ("text attachment", "messages[0].attachments[0].data", lambda: Example(messages=(
        Message("user", "read this", attachments=(Attachment.from_bytes(
            f"export {V['aws_secret_env']}\n".encode(), "text/plain"),)),
        Message("assistant", "ok")))),
    ("preference chosen", "chosen.content", lambda: Example.preference("q", f"use {V['pypi']}", "no")),
    ("preference rejected", "rejected.content", lambda: Example.preference("q", "no", f"use {V['jwt']}")),
]


def _secret_issues(ex: Example) -> list:
    return [i for i in check_basic(ex) if i.code == "likely_secret"]


@pytest.mark.parametrize(("name", "fld", "build"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_each_variant_is_an_error_naming_its_field(name: str, fld: str, build: Callable[[], Example]) -> None:
    issues = _secret_issues(build())
    assert issues, f"{name}: not detected"
    assert fld in {i.field for i in issues}, (name, [i.field for i in issues])
    assert all(i.severity == "error" for i in issues)


def test_detection_and_false_positive_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """The measured figures: variants caught / total and false positives on benign ids, hashes, UUIDs, base64."""
    caught = sum(1 for _, fld, build in VARIANTS if fld in {i.field for i in _secret_issues(build())})
    rng = random.Random(7)
    benign = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(2000)]
    benign += [hashlib.sha256(str(i).encode()).hexdigest() for i in range(1000)]
    benign += [hashlib.sha1(str(i).encode()).hexdigest() for i in range(1000)]
    benign += [hashlib.md5(str(i).encode()).hexdigest() for i in range(1000)]
    benign += [base64.b64encode(rng.randbytes(rng.randint(8, 120))).decode() for _ in range(3000)]
    benign += [base64.urlsafe_b64encode(rng.randbytes(rng.randint(8, 60))).decode() for _ in range(1000)]
    benign += [f"call_{rng.getrandbits(96):024x}" for _ in range(500)]
    benign += [f"chatcmpl-{base64.b32encode(rng.randbytes(15)).decode()}" for _ in range(500)]
    benign += [f"ftjob-{rng.getrandbits(96):024x}" for _ in range(500)]
    benign += [f"file-{base64.b32encode(rng.randbytes(15)).decode().lower()}" for _ in range(500)]
    benign += [f"INV-{rng.randint(1000, 99999)}-{rng.randint(1, 99):02d}" for _ in range(500)]
    false_pos = [t for t in benign if find_secrets(t)]
    print(f"secret variants caught: {caught}/{len(VARIANTS)}; false positives on benign ids, hashes, UUIDs and "
          f"base64: {len(false_pos)}/{len(benign)}")
    assert caught == len(VARIANTS) >= 40
    assert false_pos == []


def _sample_files(tmp_path: Path) -> Path:
    """data/ when pulled, else the generator's byte-identical output (a fresh clone has no data/ before dvc pull)."""
    data = ROOT / "data"
    if (data / "openai_chat.jsonl").is_file():
        return data
    out = tmp_path / "data"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_data.py"), "--out", str(out)], check=True)
    return out


def test_no_false_positive_on_the_sample_data(tmp_path: Path) -> None:
    """Every line of the sample data is clean except the one broken line planted with a key on purpose."""
    data = _sample_files(tmp_path)
    flagged = []
    lines = 0
    for f in sorted(data.glob("*.jsonl")) + sorted(data.glob("*.csv")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            lines += 1
            if find_secrets(line):
                flagged.append(f"{f.name}:{n}")
    print(f"sample data: {len(flagged)} flagged of {lines} lines: {flagged}")
    assert len(flagged) == 1 and flagged[0].startswith("broken.jsonl:"), flagged


def test_placeholders_and_prose_are_not_secrets() -> None:
    for text in [
        "password=<REDACTED>", "password=${DB_PASSWORD}", "password = os.environ['PW']", "password=user_password",
        "Enter your password: the one you chose at signup", "https://example.com:8080/path?q=1",
        "git@github.com:org/repo.git", "max_tokens=100", "api_key=YOUR_API_KEY", "token=****",
        "postgres://localhost:5432/db", "https://user:password@host/db", "The sk-learn joke and skeleton keys",
        "-----BEGIN PUBLIC KEY-----", "AKIA is a prefix, AKIASHORT is too short", "eyJ alone is base64 of '{\"'",
        "Rotate your API key under Settings > API keys; the key looks like lk_live_...",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "",
    ]:
        assert find_secrets(text) == [], text


def test_redact_and_excerpt_never_keep_a_value() -> None:
    for v in V.values():
        text = f"row 7: name,{v},more text after the key"
        assert v not in redact(text)
        short = excerpt(text)
        assert len(short) <= 40 and v not in short
        for piece in PLANTED:
            assert piece not in short
    assert "<REDACTED" in redact(f"x {V['aws_id']} y")
    assert redact("nothing to hide here") == "nothing to hide here"
    # a URL cut before the '@' still loses its password
    assert "hunter" not in redact("'postgres://app:hunter2hunt'")


def test_issue_messages_and_fields_never_contain_the_value() -> None:
    for _, _, build in VARIANTS:
        for issue in _secret_issues(build()):
            text = orjson.dumps(issue.to_dict()).decode() + str(issue)
            assert not any(p in text for p in PLANTED), text


def test_detect_secrets_patterns_are_the_ones_the_locators_expect() -> None:
    """ftlib gates detect-secrets' patterns with its own locators: an upgrade that changes a pattern must be
    reviewed (the locator might no longer see it), so the pattern sources are pinned here."""
    pins = {
        ("AWSKeyDetector", 0): "(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}",
        ("GitHubTokenDetector", 0): "(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36}",
        ("GitLabTokenDetector", 0): "(glpat|gldt|glft|glsoat|glrt)-[A-Za-z0-9_\\-]{20,50}(?!\\w)",
        ("SendGridDetector", 0): "SG\\.[a-zA-Z0-9_-]{22}\\.[a-zA-Z0-9_-]{43}",
        ("AzureStorageKeyDetector", 0): "AccountKey=[a-zA-Z0-9+\\/=]{88}",
        ("StripeDetector", 0): "(?:r|s)k_live_[0-9a-zA-Z]{24}",
        ("NpmDetector", 0): "\\/\\/.+\\/:_authToken=\\s*((npm_.+)|([A-Fa-f0-9-]{36})).*",
    }
    for (cls, i), source in pins.items():
        assert secret_scan._ds(cls, i).pattern == source, cls
    sources = {src for _, _, src in secret_scan.rules()}
    assert any(s.startswith("detect-secrets") for s in sources) and "ftlib" in sources


def test_clean_path_cost_per_example(capsys: pytest.CaptureFixture[str]) -> None:
    """The clean path stays cheap: ns per realistic example (benchmarks/secret_scan.py measures 100k)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import example

    from ftlib import formats

    rng = random.Random(1234)
    fmt = formats.get("openai-chat")
    exs = [fmt.decode(example(rng, i), f"b:{i}") for i in range(5000)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter_ns()
        for ex in exs:
            check_secrets(ex, Sink(ex))
        best = min(best, (time.perf_counter_ns() - start) / len(exs))
    print(f"secret check: {best:.0f} ns/example on {len(exs)} support chats")
    assert best < 100_000  # generous: shared CI machines; the benchmark gives the real figure


def test_no_output_of_the_pipeline_contains_a_planted_value(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets planted in every field and in malformed rows: ingest, split, export and validate for every target;
    no report, dataset, export, log line or error message contains any planted value."""
    from ftlib import cli, targets

    monkeypatch.setenv("FTLIB_WORKERS", "1")
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()

    def chat(i: int, **kw) -> dict:
        msgs = [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."}]
        return {"messages": kw.pop("messages", msgs), **kw}

    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    planted = [
        chat(0, messages=[{"role": "user", "content": f"my key {V['aws_id']}"},
                          {"role": "assistant", "content": "ok"}]),
        chat(1, messages=[{"role": "user", "content": "hi", "name": V["openai"]},
                          {"role": "assistant", "content": "x"}]),
        chat(2, messages=[{"role": "user", "content": "look"}, {"role": "assistant", "content": None, "tool_calls": [
            {**call, "id": V["huggingface"]}]}, {"role": "tool", "tool_call_id": V["huggingface"], "content": "r"},
            {"role": "assistant", "content": "done"}]),
        chat(3, messages=[{"role": "user", "content": "look"}, {"role": "assistant", "content": None, "tool_calls": [
            {**call, "function": {"name": V["npm"], "arguments": "{}"}}]}]),
        chat(4, metadata={"dsn": V["url_postgres"], V["gitlab"]: 1}),
        chat(5, group=V["url_https"]),
        chat(6, tools=[{"type": "function", "function": {"name": "f", "description": V["sendgrid"]}}]),
        chat(7, messages=[{"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image_url",
            "image_url": {"url": "https://bob:" + "Pa55-w0rd-9" + "@img.example.com/a.png"}}]},
            {"role": "assistant", "content": "a cat"}]),
        chat(8, messages=[{"role": "user", "content": "config"}, {"role": "assistant",
                                                                  "content": V["aws_secret_env"]}]),
        chat(9, messages=[{"role": "user", "content": V["zero_width"]}, {"role": "assistant", "content": "no"}]),
        {"role": V["stripe"], "messages": "not a list"},  # malformed and holding a key
        {V["github"]: "unknown shape"},
    ]
    lines = [orjson.dumps(o).decode() for o in planted] + ['{"broken": "' + V["jwt"]]
    lines += [orjson.dumps(chat(100 + i, group=f"g{i % 7}")).decode() for i in range(80)]
    (data / "chats.jsonl").write_text("\n".join(lines) + "\n")
    (data / "pairs.csv").write_text("prompt,completion\n" + "\n".join(f"q{i},a{i}" for i in range(40))
                                    + f"\nrow with,{V['password_eq']},one cell too many\n")
    steps = [["ingest", "data"],
             ["split", "build/dataset.parquet", "--seed", "1", "--ratios", "train=0.6,validation=0.4"]]
    for t in targets.all_targets():
        if t.export_name == t.name:
            steps += [["export", "build/splits", "--provider", t.name],
                      ["validate", f"build/export/{t.name}", "--provider", t.name]]
    printed = ""
    for argv in steps:
        try:
            cli.main(argv)
        except SystemExit as e:
            assert e.code in (0, 1, None), (argv, e.code)
        out = capfd.readouterr()
        printed += out.out + out.err
    result = orjson.loads((tmp_path / "reports" / "ingest.json").read_bytes())
    assert result["rejected"] >= len(planted) + 2
    written = [p for p in tmp_path.rglob("*") if p.is_file() and data not in p.parents]
    assert any(p.suffix == ".parquet" for p in written) and any(p.suffix == ".jsonl" for p in written)
    def text_of(p: Path) -> str:  # parquet pages are compressed: search the decoded rows
        if p.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(p)
            rows = table.drop_columns([c for c in ("blobs",) if c in table.column_names]).to_pylist()
            return orjson.dumps(rows, default=str).decode()
        return p.read_bytes().decode("utf-8", "replace")

    leaks = [(p.name, piece) for p in written for piece in PLANTED if piece in text_of(p)]
    leaks += [("output", piece) for piece in PLANTED if piece in printed]
    assert leaks == []
