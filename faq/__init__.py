"""The FAQ matching engine: which FAQ entry answers a customer's question, and whether the
bot is sure enough to answer on its own.

A pure library (no Temporal, no HTTP): activities and API routes call it.

- ``faq.io``: import and export of FAQ entries as CSV or JSON, all-or-nothing.
- ``faq.index``: ``FaqIndex``, built from entries, searched, calibrated, saved, loaded.
- ``faq.store``: ``FaqIndexStore``, the saved versions and the current one.
- ``faq.calibration``: calibrated confidence and thresholds for a target precision.
- ``faq.prior``: the prior confidence model (``prior.json``) that calibrates knowledge bases
  with too few variants to hold any out, and that every calibration is blended with.
- ``faq.learning``: the learning loop: suggested variants and evidence from tickets, reviewed.
- ``faq.encoder``: the sentence-embedding model, loaded offline once per process;
  ``faq.onnx_model`` runs it on ONNX Runtime with int8 weights (the default).
- ``faq.lexical`` and ``faq.ivf``: the character n-gram signal and large-index search.
- ``faq.knowledge_base``: the knowledge base in the database (entries, revisions, published
  index versions), answering with the current or a pinned version, and the demo knowledge
  base ``demo_kb.json`` (a web shop's customer service).
"""

from faq.calibration import choose_threshold, choose_thresholds, split_for_calibration
from faq.encoder import DEFAULT_MODEL, FaqModelError, load_encoder
from faq.index import FaqIndex, FaqIndexError, SearchParams
from faq.io import FaqImportError, export_entries, parse_entries
from faq.store import FaqIndexNotFound, FaqIndexStore

__all__ = [
    "DEFAULT_MODEL",
    "FaqImportError",
    "FaqIndex",
    "FaqIndexError",
    "FaqIndexNotFound",
    "FaqIndexStore",
    "FaqModelError",
    "SearchParams",
    "choose_threshold",
    "choose_thresholds",
    "export_entries",
    "load_encoder",
    "parse_entries",
    "split_for_calibration",
]
