"""Encryption of everything ticketflow hands Temporal to store: workflow and activity inputs
and results, signals, updates, queries, and failure messages.

A ticket's history holds customers' names, messages, orders and addresses and agents'
internal notes. Encrypted here, before they leave the process, they are ciphertext in
Temporal's database and in its Web UI; the client, the workers and the replayer decrypt
with the same keys. See :mod:`encryption.keys` for where keys come from and how they
rotate, and :mod:`encryption.codec` for the format.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from encryption.codec import EncryptionCodec
from encryption.keys import KeyRing, load_key_ring

if TYPE_CHECKING:
    from settings import Settings

__all__ = ["EncryptionCodec", "KeyRing", "data_converter", "encrypting_converter", "load_key_ring"]


def encrypting_converter(keys: KeyRing) -> DataConverter:
    """The pydantic converter with every payload and every failure message encrypted."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        # Failure messages and stack traces move into an encoded payload, so they are
        # encrypted too (a connector's error text can quote customer data).
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter(settings: Settings) -> DataConverter:
    """What every client, worker and replayer of this deployment uses."""
    if not settings.payload_encryption:
        return pydantic_data_converter
    return encrypting_converter(load_key_ring(settings))
