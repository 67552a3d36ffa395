"""Models by hub id (docs/hub.md): every ``from_pretrained`` and the command lines load ``owner/name`` through
``huggingface_hub``, here from a fake hub on 127.0.0.1 (tests/fakehub.py) with a per-test cache."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from roformer_conversion import SAMPLE_CHECKPOINT, convert_checkpoint
from roformer_conversion.cli import convert_main, main
from roformer_core import RoFormerConfig, RoFormerTokenizerFast, load_checkpoint, numpy_model
from roformer_core.checkpoint import save_checkpoint
from roformer_core.generation import GenerationConfig
from roformer_core.hub import CheckpointNotFoundError
from roformer_core.known_checkpoints import KNOWN_CHECKPOINTS

from .backends import backend_params, load_backend
from .cases import FIXTURES
from .fakehub import FakeHub, use_hub

BASE = "junnyu/roformer_chinese_base"  # the shipped sample checkpoint, saved under a real id
SIM = "junnyu/roformer_chinese_sim_char_base"  # a tiny checkpoint in JunnYu's Sim layout
WITH_GENERATION = "someone/roformer-tiny-decoder"  # JunnYu's Sim files plus a generation_config.json
FLAX_AND_BIN = "someone/flax-and-bin"  # flax_model.msgpack and pytorch_model.bin, no safetensors
NO_WEIGHTS = "someone/config-only"
GATED = "someone/gated"
TOKEN = "hf_fake_token"
SAMPLE_FILES = {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"}
TEXTS = ["今天天气非常好。", "我们去公园散步吧"]


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> dict:
    """The repositories' directories: ``BASE`` (its main branch also holds tf_model.h5 and flax_model.msgpack, as
    JunnYu's repositories do) and its branch ``v0`` (other weights), ``SIM``, ``FLAX_AND_BIN``, ``NO_WEIGHTS``."""
    root = tmp_path_factory.mktemp("repos")
    base = root / "base"
    shutil.copytree(SAMPLE_CHECKPOINT, base)
    for target, name in (("tf", "tf_model.h5"), ("flax", "flax_model.msgpack")):
        convert_checkpoint(SAMPLE_CHECKPOINT, root / target, to=target)
        shutil.copy(root / target / name, base / name)
    config, state = load_checkpoint(SAMPLE_CHECKPOINT)
    v0_state = {name: array * 0.5 if array.dtype.kind == "f" else array for name, array in state.items()}
    save_checkpoint(root / "v0", config, v0_state)
    convert_checkpoint(SAMPLE_CHECKPOINT, root / "bin", to="pt", pytorch_bin=True)
    flax_and_bin = root / "flax_and_bin"
    shutil.copytree(root / "bin", flax_and_bin)
    shutil.copy(root / "flax" / "flax_model.msgpack", flax_and_bin)
    config_only = root / "config_only"
    config.save_pretrained(config_only)
    with_generation = root / "with_generation"  # a decoder repository with decoding defaults
    shutil.copytree(FIXTURES / "family" / "sim_junnyu", with_generation)
    GenerationConfig(max_new_tokens=7, num_beams=2).save_pretrained(with_generation)
    return {
        WITH_GENERATION: {"main": with_generation},
        BASE: {"main": base, "v0": root / "v0"},
        SIM: {"main": FIXTURES / "family" / "sim_junnyu"},
        FLAX_AND_BIN: {"main": flax_and_bin},
        NO_WEIGHTS: {"main": config_only},
        GATED: {"main": base},
    }


@pytest.fixture(scope="module")
def server(repos):
    hub = FakeHub()
    for repo_id, revisions in repos.items():
        for revision, directory in revisions.items():
            hub.add(repo_id, directory, revision, token=TOKEN if repo_id == GATED else None)
    yield hub.start()
    hub.stop()


@pytest.fixture
def hub(server, tmp_path, monkeypatch) -> FakeHub:
    """The fake hub as ``HF_ENDPOINT``, an empty cache, and an empty request log."""
    use_hub(monkeypatch, server.url, tmp_path / "cache")
    server.requests.clear()
    return server


@pytest.fixture(scope="module")
def sample_inputs() -> dict[str, np.ndarray]:
    batch = RoFormerTokenizerFast.from_pretrained(SAMPLE_CHECKPOINT)(TEXTS, padding=True, return_tensors="np")
    return {name: np.asarray(value) for name, value in batch.items()}


@pytest.fixture(scope="module")
def expected_logits(sample_inputs) -> np.ndarray:
    """The float64 oracle on the sample's own files."""
    config, state = load_checkpoint(SAMPLE_CHECKPOINT)
    return numpy_model.forward(config, state, "masked_lm", **sample_inputs)["logits"]


# TensorFlow's first model build in a process takes over 10 s
BACKENDS = [p if p.id != "tf" else pytest.param("tf", id="tf", marks=pytest.mark.slow) for p in backend_params()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_masked_lm_by_id_downloads_config_and_one_weights_file(backend, hub, sample_inputs, expected_logits) -> None:
    """``RoFormerForMaskedLM.from_pretrained(BASE)`` in each framework: the repository also has the reference TF and
    Flax files, but safetensors come first, and nothing else is fetched; the logits are the sample's."""
    be = load_backend(backend)
    model = be.from_pretrained("masked_lm", BASE)
    logits = be.run(model, sample_inputs)["logits"]
    np.testing.assert_allclose(logits, expected_logits, atol=1e-5, rtol=0)
    assert hub.files("GET") == {"config.json", "model.safetensors"}
    assert hub.files("HEAD") == {"config.json", "model.safetensors"}
    assert {r.revision for r in hub.requests} == {"main"}


def test_tokenizer_and_config_by_id_fetch_only_their_files(hub, sample_inputs) -> None:
    tokenizer = RoFormerTokenizerFast.from_pretrained(BASE)
    assert hub.files("GET") == {"vocab.txt", "tokenizer_config.json", "special_tokens_map.json"}
    batch = tokenizer(TEXTS, padding=True, return_tensors="np")
    for name, value in sample_inputs.items():
        np.testing.assert_array_equal(batch[name], value)
    hub.requests.clear()
    config = RoFormerConfig.from_pretrained(BASE, num_labels=5, revision="v0")
    assert hub.files("GET") == {"config.json"}
    assert config == RoFormerConfig.from_pretrained(SAMPLE_CHECKPOINT, num_labels=5)
    assert "revision" not in config.extra


def test_revision_loads_that_branch(hub, sample_inputs, expected_logits) -> None:
    from roformer_pt import RoFormerForMaskedLM

    model = RoFormerForMaskedLM.from_pretrained(BASE, revision="v0")
    assert {r.revision for r in hub.requests} == {"v0"}
    config, state = load_checkpoint(hub.repos[BASE].revisions["v0"])
    np.testing.assert_allclose(
        model.state_dict()["roformer.embeddings.word_embeddings.weight"].numpy(),
        state["roformer.embeddings.word_embeddings.weight"],
    )
    assert not np.allclose(state["roformer.embeddings.word_embeddings.weight"], 0)
    with pytest.raises(CheckpointNotFoundError, match=rf"{BASE} has no revision 'v9': pass an existing branch"):
        RoFormerConfig.from_pretrained(BASE, revision="v9")


def test_sim_id_gets_unilm(hub) -> None:
    """JunnYu's Sim config.json has no ``unilm``; loaded by its id it gets ``unilm=True`` (the table), an explicit
    override wins, and the same files from a directory keep the file's value."""
    from roformer_pt import RoFormerForCausalLM

    assert KNOWN_CHECKPOINTS[SIM].overrides == {"unilm": True}
    assert RoFormerConfig.from_pretrained(SIM).unilm is True
    assert RoFormerConfig.from_pretrained(SIM, unilm=False).unilm is False
    assert RoFormerConfig.from_pretrained(FIXTURES / "family" / "sim_junnyu").unilm is False
    model = RoFormerForCausalLM.from_pretrained(SIM)
    assert (model.config.unilm, model.config.add_pooling_layer, model.config.pooler_activation) == (
        True,
        True,
        "linear",
    )
    assert hub.files("GET") == {"config.json", "pytorch_model.bin", "generation_config.json"}  # a causal LM
    assert model.generation_config is not None


def test_causal_lm_by_id_gets_its_generation_config(hub) -> None:
    """A causal LM loaded by id also fetches generation_config.json (only that file more): generate()'s defaults."""
    from roformer_pt import RoFormerForCausalLM

    model = RoFormerForCausalLM.from_pretrained(WITH_GENERATION)
    assert (model.generation_config.max_new_tokens, model.generation_config.num_beams) == (7, 2)
    assert hub.files("GET") == {"config.json", "pytorch_model.bin", "generation_config.json"}


def test_each_framework_prefers_its_own_file_over_pytorch_model_bin(hub, expected_logits, sample_inputs) -> None:
    """Without safetensors, Flax downloads flax_model.msgpack (PyTorch is not needed to read it) and never the
    pytorch_model.bin beside it; PyTorch downloads pytorch_model.bin."""
    be = load_backend("flax")
    model = be.from_pretrained("masked_lm", FLAX_AND_BIN)
    np.testing.assert_allclose(be.run(model, sample_inputs)["logits"], expected_logits, atol=1e-5, rtol=0)
    assert hub.files("GET") == {"config.json", "flax_model.msgpack"}
    missing = {r.filename for r in hub.requests if r.status == 404}
    assert missing == {"model.safetensors", "model.safetensors.index.json"}
    hub.requests.clear()
    load_backend("pt").from_pretrained("masked_lm", FLAX_AND_BIN)
    assert hub.files("GET") == {"pytorch_model.bin"}  # config.json is in the cache
    assert hub.files("HEAD") == {"config.json", "pytorch_model.bin"}


def test_failures_name_the_id_and_what_to_do(hub, tmp_path, monkeypatch) -> None:
    from roformer_pt import RoFormerModel

    with pytest.raises(CheckpointNotFoundError, match=r"no model repository of that name .*pass token= .*directory"):
        RoFormerModel.from_pretrained("someone/missing")
    with pytest.raises(CheckpointNotFoundError, match=rf"{NO_WEIGHTS} has no weights file: expected one of model\."):
        RoFormerModel.from_pretrained(NO_WEIGHTS)
    with pytest.raises(CheckpointNotFoundError, match=rf"{GATED} is a gated repository .* pass token="):
        RoFormerModel.from_pretrained(GATED)
    with pytest.raises(CheckpointNotFoundError, match=rf"{GATED} is a gated repository"):
        RoFormerTokenizerFast.from_pretrained(GATED)
    assert [r.status for r in hub.requests if r.repo == GATED] == [401, 401]
    assert isinstance(RoFormerModel.from_pretrained(GATED, token=TOKEN), RoFormerModel)
    # a path that cannot be an id is still a missing directory, without asking the hub
    hub.requests.clear()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RoFormerModel.from_pretrained("./no/such/dir")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="pass the directory that holds it"):
        RoFormerModel.from_pretrained("model.safetensors")
    assert hub.requests == []


def test_cache_serves_after_the_server_is_gone(repos, tmp_path, monkeypatch, sample_inputs, expected_logits) -> None:
    """Loaded once, a model and its tokenizer load again from the cache once the hub is gone, with
    ``HF_HUB_OFFLINE=1`` or with ``local_files_only=True``; an id never loaded says what to do. (With neither,
    huggingface_hub retries an unreachable hub for ~23 s before it falls back to the cache.)"""
    from roformer_pt import RoFormerForMaskedLM

    own = FakeHub()
    own.add(BASE, repos[BASE]["main"])
    own.start()
    use_hub(monkeypatch, own.url, tmp_path / "cache")
    RoFormerForMaskedLM.from_pretrained(BASE)
    RoFormerTokenizerFast.from_pretrained(BASE)
    own.stop()
    for offline in (True, False):  # HF_HUB_OFFLINE=1, then local_files_only=True
        use_hub(monkeypatch, own.url, tmp_path / "cache", offline=offline)
        flags = {} if offline else {"local_files_only": True}
        tokenizer = RoFormerTokenizerFast.from_pretrained(BASE, **flags)
        model = RoFormerForMaskedLM.from_pretrained(BASE, **flags)
        batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
        np.testing.assert_allclose(model(**batch).logits.detach().numpy(), expected_logits, atol=1e-5, rtol=0)
        message = rf"{SIM}: config.json is not in the cache \({tmp_path / 'cache'}\) and local_files_only=True or "
        with pytest.raises(CheckpointNotFoundError, match=message + "HF_HUB_OFFLINE=1 forbids downloading"):
            RoFormerForMaskedLM.from_pretrained(SIM, **flags)
    assert [r.repo for r in own.requests] == [BASE] * len(own.requests)


def test_roformer_models_lists_the_known_checkpoints(capsys) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(KNOWN_CHECKPOINTS)
    assert "unilm=True" in rows[SIM] and "v2" in rows["junnyu/roformer_v2_chinese_char_large"].split()
    assert "unilm" not in rows[BASE]


@pytest.mark.slow  # roformer verify runs and times all seven heads
def test_convert_and_verify_take_an_id(hub, tmp_path, capsys) -> None:
    assert convert_main([BASE, str(tmp_path / "out"), "--to", "tf", "--quiet"]) == 0
    assert hub.files("GET") == SAMPLE_FILES
    assert {p.name for p in (tmp_path / "out").iterdir()} == SAMPLE_FILES - {"model.safetensors"} | {"tf_model.h5"}
    hub.requests.clear()
    assert main(["verify", BASE, "--frameworks", "pt"]) == 0
    assert hub.files("HEAD") == SAMPLE_FILES and hub.files("GET") == set()  # from the cache
    assert "OK: every framework matches" in capsys.readouterr().out
    assert main(["verify", "someone/missing", "--frameworks", "pt"]) == 1
    assert convert_main(["someone/missing", str(tmp_path / "x"), "--to", "pt"]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all("someone/missing is not a local directory" in line for line in errors)
