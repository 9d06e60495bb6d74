"""An index as one byte string, the form the knowledge base keeps it in the database."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

import faq.index
from faq.index import FaqIndex, FaqIndexError
from tests.faq.conftest import PARAPHRASES

pytestmark = pytest.mark.slow  # loads the embedding model (once per session)

QUESTIONS = [question for question, _ in PARAPHRASES] + ["what is the weather like on Mars"]


def test_an_index_as_bytes_loads_with_the_same_version_and_answers_without_encoding(
    calibrated_index: FaqIndex, monkeypatch
):
    data = calibrated_index.to_bytes()

    def no_encoding(*args, **kwargs):
        raise AssertionError("loading must not encode anything")

    with monkeypatch.context() as patch:
        patch.setattr(faq.index, "encode", no_encoding)
        loaded = FaqIndex.from_bytes(data, encoder=calibrated_index._encoder)

    assert loaded.version == calibrated_index.version and loaded.info() == calibrated_index.info()
    assert loaded.search_many(QUESTIONS) == calibrated_index.search_many(QUESTIONS)


def test_bytes_that_are_not_an_index_or_were_edited_are_refused(calibrated_index: FaqIndex):
    archive = zipfile.ZipFile(io.BytesIO(calibrated_index.to_bytes()))
    edited = io.BytesIO()
    with zipfile.ZipFile(edited, "w") as out:
        for name in archive.namelist():
            data = archive.read(name)
            if name == "index.json":
                manifest = json.loads(data)
                manifest["entries"][0]["answer"] = "Something else."
                data = json.dumps(manifest).encode()
            out.writestr(name, data)
    no_vectors = io.BytesIO()
    with zipfile.ZipFile(no_vectors, "w") as out:
        out.writestr("index.json", archive.read("index.json"))

    with pytest.raises(FaqIndexError, match="unreadable FAQ index archive"):
        FaqIndex.from_bytes(b"not a zip file")
    with pytest.raises(FaqIndexError, match="content is version"):
        FaqIndex.from_bytes(edited.getvalue())
    with pytest.raises(FaqIndexError, match="has no vectors.npy"):
        FaqIndex.from_bytes(no_vectors.getvalue())
