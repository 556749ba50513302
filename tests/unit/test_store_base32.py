"""Nix base-32, checked against Nix's own test vectors and hand-worked bytes."""

import hashlib

import pytest

from engine.store import nix_base32
from engine.store.base32 import nix_base32_decode


@pytest.mark.parametrize("data, expected", [
    # Worked by hand from printHash32: the first character is the most significant digit.
    (b"\x01", "01"),
    (b"\x1f", "0z"),
    (b"\x20", "10"),
    (b"\x00\x01", "0080"),
    (b"", ""),
])
def test_hand_vectors(data: bytes, expected: str) -> None:
    assert nix_base32(data) == expected


@pytest.mark.parametrize("algo, text, expected", [
    # From Nix's libutil tests (hash.cc): hashString(..., "abc"/"") printed in base-32.
    ("sha1", b"abc", "kpcd173cq987hw957sx6m0868wv3x6d9"),
    ("sha256", b"abc", "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"),
    ("md5", b"", "3y8bwfr609h3lh9ch0izcqq7fl"),
])
def test_nix_vectors(algo: str, text: bytes, expected: str) -> None:
    assert nix_base32(hashlib.new(algo, text).digest()) == expected


def test_twenty_bytes_give_32_characters_of_the_alphabet() -> None:
    text = nix_base32(hashlib.sha256(b"x").digest()[:20])
    assert len(text) == 32
    assert set(text) <= set("0123456789abcdfghijklmnpqrsvwxyz")


def test_decode_inverts_encode() -> None:
    for n in (1, 16, 20, 32, 64):
        data = hashlib.sha512(str(n).encode()).digest()[:n]
        assert nix_base32_decode(nix_base32(data)) == data


@pytest.mark.parametrize("bad", ["e0", "0u", "zz", "0"])
def test_decode_rejects_what_no_encoding_gives(bad: str) -> None:
    with pytest.raises(ValueError):
        nix_base32_decode(bad)
