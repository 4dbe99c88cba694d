"""The seed library's tuner surface (ractogateway's OpenAIFineTuner & co.) over ftlib.api, end to end through the
real openai SDK against the emulator: the same method names, parameters and return shapes, with submit-once
underneath, and other providers' hyperparameter spellings answered with this provider's name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from emulators.openai_server import OpenAIEmulator

from ftlib import layout
from ftlib.dataset import Dataset
from ftlib.errors import ConfigError, ProviderError
from ftlib.finetuner import FineTuner

pytestmark = pytest.mark.integration
BASE = "gpt-4o-mini-2024-07-18"
SEED_STATUS_KEYS = {"id", "status", "model", "fine_tuned_model", "created_at", "finished_at", "trained_tokens", "error"}


def pairs(n: int, tag: str = "Question") -> Dataset:
    return Dataset.from_pairs([(f"{tag} {i}: where is my receipt?", f"Answer {i}: under Billing, then History.")
                               for i in range(n)], system="You are Ledgerly's support assistant.")


@pytest.fixture
def emu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIEmulator]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(layout.HOME_ENV, str(tmp_path / "home"))
    with OpenAIEmulator() as e:
        for var, value in e.env().items():
            monkeypatch.setenv(var, value)
        yield e


def test_the_seed_surface_end_to_end_is_an_import_change(emu: OpenAIEmulator) -> None:
    from ftlib.finetuner import OpenAIFineTuner  # was: from ractogateway.finetune import OpenAIFineTuner

    tuner = OpenAIFineTuner()
    assert isinstance(tuner, FineTuner) and tuner.provider == "openai"
    file_id = tuner.upload_dataset(pairs(12), verbose=False)
    val_id = tuner.upload_dataset(pairs(3, "Other"), split="validation", verbose=False)
    assert file_id.startswith("file-") and val_id.startswith("file-") and len(emu.files) == 2
    assert tuner.upload_dataset(pairs(12), verbose=False) == file_id and len(emu.files) == 2  # never sent twice

    job_id = tuner.create_job(file_id, BASE, validation_file=val_id, n_epochs=2, batch_size="auto", suffix="seed",
                              verbose=False)
    job = emu.jobs[job_id]
    assert (job["training_file"], job["validation_file"], job["suffix"]) == (file_id, val_id, "seed")
    assert job["method"]["supervised"]["hyperparameters"] == {"n_epochs": 2}  # "auto": the provider decides

    status = tuner.get_status(job_id)
    assert set(status) >= SEED_STATUS_KEYS and status["id"] == job_id and status["model"] == BASE
    assert isinstance(status["created_at"], int) and status["status"] in ("pending", "running")
    model = tuner.wait_for_completion(job_id, poll_interval=0.01, verbose=False)
    assert model == f"ft:{BASE}:ftlib:seed:{job_id}"
    done = tuner.get_status(job_id)
    assert (done["status"], done["raw_status"], done["fine_tuned_model"]) == ("succeeded", "succeeded", model)
    assert done["finished_at"] >= done["created_at"] and done["trained_tokens"] > 0 and done["error"] is None

    events = tuner.list_events(job_id)
    assert events[0]["message"] == "Job status: succeeded" and events[-1]["message"] == "Created fine-tuning job"
    assert all(set(e) == {"message", "level", "created_at"} and isinstance(e["created_at"], int) for e in events)
    assert [j["id"] for j in tuner.list_jobs()] == [job_id]

    # the one-call pipeline on the same data and settings: the same job and model, nothing sent again
    again = tuner.run_pipeline(pairs(12), model=BASE, validation_dataset=pairs(3, "Other"), n_epochs=2, suffix="seed",
                               poll_interval=0.01, verbose=False)
    assert again == model and len(emu.jobs) == 1 and len(emu.files) == 2 and emu.create_attempts == 1

    # a fresh tuner (a restarted kernel) finds the uploaded file and its job from the ledger
    fresh = FineTuner("openai")
    assert fresh.create_job(file_id, BASE, validation_file=val_id, n_epochs=2, suffix="seed", verbose=False) == job_id
    assert fresh.get_status(job_id)["job_key"] == tuner.get_status(job_id)["job_key"] is not None


def test_cancel_job_and_a_failed_job(emu: OpenAIEmulator) -> None:
    tuner = FineTuner("openai")
    emu.auto_advance = False
    job_id = tuner.create_job(pairs(12), attempt=1, verbose=False)  # a Dataset is uploaded first, as Gemini's seed did
    assert tuner.cancel_job(job_id) == {"id": job_id, "status": "cancelled"}
    emu.auto_advance = True
    emu.fail_jobs_with = ("invalid_training_file", "Line 3 is not valid chat")
    with pytest.raises(ProviderError, match="failed: Line 3 is not valid chat") as err:
        tuner.run_pipeline(pairs(12), attempt=2, poll_interval=0.01, verbose=False)
    assert isinstance(err.value, RuntimeError)  # what the seed raised, so `except RuntimeError` keeps working
    assert len(emu.jobs) == 2


@pytest.mark.parametrize(("provider", "call", "message"), [
    ("anthropic", {"hyperparameters": {"n_epochs": 3}}, "n_epochs is another target's name for it: anthropic calls "
                                                        "it epochCount"),
    ("anthropic", {"learning_rate_multiplier": 0.5}, "anthropic calls it learningRateMultiplier"),
    ("gemini", {"n_epochs": 3}, "gemini calls it epoch_count"),
    ("gemini", {"epoch_count": 3, "batch_size": 4}, "batch_size is another target's name for batch size, which "
                                                     "gemini does not let you set: leave it out"),
    ("gemini", {"learning_rate": 0.001}, "gemini calls it learning_rate_multiplier"),
    ("openai", {"epoch_count": 3}, "openai calls it n_epochs"),
    ("local", {"n_epochs": 1, "base_model": "some/model"}, "local calls it num_train_epochs"),
])
def test_other_providers_spellings_name_the_right_one_before_any_call(emu: OpenAIEmulator, provider: str,
                                                                        call: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FineTuner(provider).run_pipeline(pairs(40), verbose=False, **call)
    assert emu.requests == []


def test_seed_style_credentials_are_refused_with_the_fix(emu: OpenAIEmulator) -> None:
    from ftlib.finetuner import GeminiFineTuner, OpenAIFineTuner

    with pytest.raises(ConfigError, match="from the environment the provider's SDK reads"):
        OpenAIFineTuner(api_key="sk-not-here")
    with pytest.raises(ConfigError, match="drop api_key/base_url"):
        GeminiFineTuner(api_key="AIza-not-here")
    with pytest.raises(ImportError):
        from ftlib.finetuner import NoSuchFineTuner  # noqa: F401
