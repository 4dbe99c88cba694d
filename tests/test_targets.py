"""Targets are plug-ins: found through entry points, declared in one package, never named by the core."""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path

import orjson
import pytest

from ftlib import targets
from ftlib.jobs import hyperparameters

ROOT = Path(__file__).resolve().parents[1]
TOY = '''
from ftlib.limits import ModelSpec, SplitLimits
from ftlib.records import Example
from ftlib.targets.base import Hyperparameters, Target


class ToyLines:
    """{"q", "a"} lines: a format no built-in target writes."""
    name = "toy-lines"
    kind = "sft"
    priority = 95

    def detect(self, obj):
        return set(obj) == {"q", "a"}

    def decode(self, obj, source=None):
        return Example.from_pair(obj["q"], obj["a"], source=source)

    def encode(self, ex):
        return {"q": ex.messages[-2].content, "a": ex.messages[-1].content}

    def losses(self, ex):
        return ["system prompt"] if ex.messages[0].role == "system" else []


def no_shouting(ex, sink):
    for i, m in enumerate(ex.messages):
        if m.content.isupper():
            sink.error("shouting", f"messages[{i}].content", "the text is all capitals; write it in sentence case")


class Knobs(Hyperparameters):
    rounds: int = 1


TARGET = Target(
    name="toy", title="Toy target from another package", formats={"sft": ToyLines(), "preference": None},
    models=(ModelSpec("toy-1", 40, "error", "toy limit: 40 tokens", chars_per_token=4.0, exact=False),),
    dataset_limits={"train": SplitLimits(1, None, None, "toy: any size")}, rules=(no_shouting,),
    default_base_model="toy-1", hyperparameters={"supervised": Knobs},
)
'''


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A separately installed package: its module plus a dist-info with an `ftlib.targets` entry point."""
    site = tmp_path_factory.mktemp("site")
    (site / "toy_target.py").write_text(TOY)
    info = site / "toy_target-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-target\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ftlib.targets]\ntoy = toy_target:TARGET\n")
    return site


def ftlib(args: list[str], cwd: Path, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site) if site else ""}
    return subprocess.run([sys.executable, "-m", "ftlib", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_target_from_another_package_works_end_to_end(toy_site: Path, tmp_path: Path) -> None:
    listed = ftlib(["targets"], tmp_path, toy_site)
    assert listed.returncode == 0 and "toy-lines" in listed.stdout, listed.stderr
    lines = [{"messages": [{"role": "user", "content": f"question {i}?"},
                           {"role": "assistant", "content": "ANSWER IN CAPITALS" if i == 3 else f"answer {i}"}]}
             for i in range(6)]
    lines.append({"q": "read from the toy format?", "a": "yes, detected like any other"})
    (tmp_path / "in.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    assert ftlib(["ingest", "in.jsonl"], tmp_path, toy_site).returncode == 0
    assert ftlib(["split", "build/dataset.parquet", "--ratios", "train=1.0"], tmp_path, toy_site).returncode == 0
    exported = ftlib(["export", "build/splits", "--provider", "toy"], tmp_path, toy_site)
    assert exported.returncode == 0, exported.stderr
    written = [orjson.loads(x) for x in (tmp_path / "build/export/toy/train.jsonl").read_bytes().splitlines()]
    assert len(written) == 7 and all(set(x) == {"q", "a"} for x in written)
    checked = ftlib(["validate", "build/export/toy", "--provider", "toy"], tmp_path, toy_site)
    assert checked.returncode == 1  # its own rule found the shouting example
    report = orjson.loads((tmp_path / "reports/validation/toy.json").read_bytes())
    assert report["files"]["train.jsonl"]["issues_by_code"] == {"shouting": 1}
    # without the package installed, the same command does not know the target
    missing = ftlib(["export", "build/splits", "--provider", "toy"], tmp_path)
    assert missing.returncode == 2 and "unknown target 'toy'" in missing.stderr


PROVIDER_NAMES = {t.name for t in targets.all_targets()} | {"bedrock", "vertex", "azure", "claude"}


def _string_literals(path: Path) -> list[tuple[int, str]]:
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, str) and value.lower() in PROVIDER_NAMES:
                found.append((tok.start[0], value))
    return found


def test_the_core_names_no_target() -> None:
    core = [p for p in (ROOT / "ftlib").rglob("*.py")
            if "targets" not in p.relative_to(ROOT / "ftlib").parts[:1] or p.parent == ROOT / "ftlib" / "targets"]
    core += list((ROOT / "flows").rglob("*.py"))
    hits = {f"{p.relative_to(ROOT)}:{line}": v for p in core for line, v in _string_literals(p)}
    assert len(core) > 20 and hits == {}


def test_validate_never_imports_the_training_stack(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import sys
        from ftlib import cli, targets, validate, finetune
        for t in targets.all_targets():
            t.make_backend() if t.backend and t.name == "local" else None
        print(sorted(m for m in ("torch", "transformers", "trl", "peft", "openai", "boto3") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("target", "hp", "message"), [
    ("anthropic", {"n_epochs": 3}, "n_epochs is another target's name for it: anthropic calls it epochCount"),
    ("openai", {"epochCount": 3}, "openai calls it n_epochs"),
    ("gemini", {"num_train_epochs": 2}, "gemini calls it epoch_count"),
    ("local", {"n_epochs": 2}, "local calls it num_train_epochs"),
    ("openai", {"n_epochs": 0}, "n_epochs=0: input should be greater than or equal to 1"),
    ("openai", {"n_epochs": 2.5}, "n_epochs=2.5: input should be a valid integer"),
    ("openai", {"learning_rate_multiplier": "fast"}, "learning_rate_multiplier='fast'"),
    ("anthropic", {"batchSize": 2}, "batchSize=2: input should be greater than or equal to 4"),
    ("local", {"lora_r": 0}, "lora_r=0: input should be greater than or equal to 1 (LoRA rank)"),
])
def test_hyperparameters_are_checked_with_the_fix(target: str, hp: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        hyperparameters.check(targets.get(target), "supervised", hp)


def test_hyperparameter_values_and_defaults() -> None:
    openai = targets.get("openai")
    assert hyperparameters.check(openai, "supervised", {"n_epochs": "auto", "batch_size": 8}) == {
        "n_epochs": "auto", "batch_size": 8}
    assert hyperparameters.check(openai, "supervised", None) == {}  # hosted: the provider decides the rest
    local = hyperparameters.check(targets.get("local"), "dpo", {"max_steps": 5})
    assert local["max_steps"] == 5 and local["beta"] == 0.1 and local["lora_r"] == 16  # ftlib's defaults: in the key
    with pytest.raises(ValueError, match="does not support 'dpo'; use one of: supervised"):
        hyperparameters.check(targets.get("anthropic"), "dpo", {})
    with pytest.raises(ValueError, match="none: it is an export-only target"):
        hyperparameters.check(targets.get("huggingface"), "supervised", {})


def test_one_default_base_model_per_target_drives_validation_cost_and_job(tmp_path: Path) -> None:
    from ftlib import tokens, validate
    from ftlib.finetune import build_spec

    for t in targets.all_targets():
        if t.default_base_model:
            assert tokens.estimate([100], t.name)["base_model"] == t.default_base_model
            assert validate.ValidationReport.empty(t.name, None, "train").base_model == t.default_base_model
    (tmp_path / "train.jsonl").write_text('{"messages": []}\n')
    spec, _ = build_spec(tmp_path, targets.get("openai"), {})
    assert spec.base_model == targets.get("openai").default_base_model
