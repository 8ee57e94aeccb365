"""Numeric arrays as string properties: what a layer's per-unit statistics look like in the store.

An array is stored as the base64 text of its ``.npy`` bytes (dtype and shape included), so it
comes back bit for bit on every engine; one string property costs LadybugDB far less than a
list property of the same values.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np

from explgraph.core.errors import StoreError


def encode_array(values: np.ndarray) -> str:
    """``values`` as text: base64 of the ``.npy`` file (dtype, shape and bytes kept)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(values), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_array(text: str) -> np.ndarray:
    """The array :func:`encode_array` wrote.

    Raises:
        StoreError: the text is not an encoded array.
    """
    try:
        return np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    except (binascii.Error, ValueError, OSError, EOFError) as error:
        raise StoreError(f"a stored array cannot be read ({error}): mine the model again") from None


__all__ = ["decode_array", "encode_array"]
