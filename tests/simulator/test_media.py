"""Simulated media: reproducible generated files and stored scripted ones."""

import random

import pytest

from actors.simulator._media import MAX_GENERATED_SIZE, MediaStore, generated_bytes, generated_ref, sha256_hex


def test_generated_refs_recompute_the_same_bytes():
    ref = generated_ref(random.Random(1), 1000)
    assert generated_bytes(ref) == generated_bytes(ref)
    assert len(generated_bytes(ref)) == 1000
    other = generated_ref(random.Random(2), 1000)
    assert generated_bytes(other) != generated_bytes(ref)


@pytest.mark.parametrize("size", [0, MAX_GENERATED_SIZE + 1])
def test_generated_size_is_bounded(size):
    with pytest.raises(ValueError, match="media size"):
        generated_ref(random.Random(1), size)


async def test_store_round_trip_and_unknown_refs(tmp_path):
    store = MediaStore(tmp_path / "media")
    ref = await store.put(b"payload")
    assert await store.get(ref) == b"payload"
    assert sha256_hex(b"payload") == sha256_hex(await store.get(ref))
    for unknown in ("m-" + "0" * 32, "../../etc/passwd", "gen-x-y"):
        with pytest.raises(KeyError):
            await store.get(unknown)
