"""A small hand-made knowledge base, and the real embedding model loaded once per session."""

from __future__ import annotations

import pytest

from faq.encoder import load_encoder
from faq.index import FaqIndex
from models.faq import FaqEntry

KNOWLEDGE_BASE = [
    FaqEntry(
        id="card-lost",
        questions=["I lost my card", "My card was stolen", "How do I block my card?"],
        answer="Freeze your card in the app under Cards > Freeze, then order a new one.",
        department="cards",
        tags=["card", "security"],
    ),
    FaqEntry(
        id="password-reset",
        questions=["How do I reset my password?", "I forgot my password", "I can't log in, I need a new password"],
        answer="Use 'Forgot password' on the login page; the link is valid for one hour.",
        department="account",
    ),
    FaqEntry(
        id="refund-status",
        questions=["Where is my refund?", "When will I get my money back?", "My refund has not been paid yet"],
        answer="Refunds reach your account within 5 business days of approval.",
        department="billing",
    ),
    FaqEntry(
        id="delivery-time",
        questions=["How long does delivery take?", "When will my order arrive?", "What is the shipping time?"],
        answer="Orders arrive in 2-4 business days.",
        department="shipping",
    ),
    FaqEntry(
        id="cancel-order",
        questions=["How can I cancel my order?", "I want to cancel my purchase"],
        answer="Open the order and choose Cancel while it has not shipped.",
        department="shipping",
    ),
    FaqEntry(
        id="change-address",
        questions=["How do I change my address?", "Update my home address"],
        answer="Edit your address under Profile > Addresses.",
        department="account",
    ),
    FaqEntry(
        id="summer-promo",
        questions=["Is the summer discount code still valid?", "summer promo code"],
        answer="The summer code SUMMER10 works until 31 August.",
        department="billing",
        enabled=False,
    ),
    FaqEntry(
        id="carte-perdue",
        questions=["J'ai perdu ma carte", "On m'a volé ma carte bancaire"],
        answer="Bloquez votre carte dans l'application.",
        department="cards",
        language="fr",
    ),
]

# Paraphrases that share few words with the entry's own questions.
PARAPHRASES = [
    ("someone stole my credit card", "card-lost"),
    ("I can't remember my login password", "password-reset"),
    ("the money you owe me has still not come back to my account", "refund-status"),
    ("how many days until my package gets here", "delivery-time"),
    ("please call off the order I placed yesterday", "cancel-order"),
    ("I moved house, where do I put my new address", "change-address"),
]

# Held-out questions to calibrate with (never the paraphrases above).
CALIBRATION = [
    ("my card is missing", "card-lost"),
    ("block my stolen card", "card-lost"),
    ("password reset link please", "password-reset"),
    ("forgot my login details", "password-reset"),
    ("has my refund been sent", "refund-status"),
    ("refund still missing", "refund-status"),
    ("when does my parcel arrive", "delivery-time"),
    ("delivery duration", "delivery-time"),
    ("cancel my order now", "cancel-order"),
    ("stop my purchase", "cancel-order"),
    ("new address for my profile", "change-address"),
    ("change where I live in my account", "change-address"),
]


@pytest.fixture(scope="session")
def encoder():
    return load_encoder()


@pytest.fixture(scope="session")
def kb_index(encoder) -> FaqIndex:
    return FaqIndex.build(KNOWLEDGE_BASE, encoder=encoder)


@pytest.fixture(scope="session")
def calibrated_index(kb_index: FaqIndex) -> FaqIndex:
    questions, expected = zip(*CALIBRATION, strict=True)
    # Few questions: observed precision (level 0.5) and many simulated unanswerable
    # questions, so that the confidence learns what a weak match looks like.
    index, _ = kb_index.calibrate(
        list(questions),
        list(expected),
        target_precision=0.9,
        confidence_level=0.5,
        min_department_samples=1000,
        out_of_scope_share=0.5,
    )
    return index
