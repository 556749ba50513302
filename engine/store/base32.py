"""Nix's base-32: the encoding of hashes in store path names.

Alphabet ``0123456789abcdfghijklmnpqrsvwxyz`` (no e, o, t, u). The digit order is Nix's own
(``printHash32``): the output's first character holds the *most* significant 5 bits of the
hash read as a little-endian number, so a 20-byte hash gives 32 characters and, unlike
RFC 4648, the last byte of the input decides the first character.
"""

from __future__ import annotations

ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}


def encoded_length(nbytes: int) -> int:
    return (nbytes * 8 - 1) // 5 + 1 if nbytes else 0


def nix_base32(data: bytes) -> str:
    """Encode ``data`` exactly as Nix's ``printHash32`` does."""
    out = []
    for n in range(encoded_length(len(data)) - 1, -1, -1):
        bit = n * 5
        i, j = divmod(bit, 8)
        c = data[i] >> j
        if i + 1 < len(data):
            c |= data[i + 1] << (8 - j)
        out.append(ALPHABET[c & 0x1F])
    return "".join(out)


def nix_base32_decode(text: str) -> bytes:
    """Inverse of :func:`nix_base32`; ``ValueError`` on a character outside the alphabet or
    a string that is not the encoding of whole bytes."""
    nbytes = len(text) * 5 // 8
    if encoded_length(nbytes) != len(text):
        raise ValueError(f"{len(text)} characters are not a base-32 encoding of whole bytes")
    out = bytearray(nbytes)
    for n, char in enumerate(reversed(text)):
        try:
            digit = _VALUE[char]
        except KeyError:
            raise ValueError(f"{char!r} is not a Nix base-32 digit") from None
        i, j = divmod(n * 5, 8)
        out[i] |= (digit << j) & 0xFF
        carry = digit >> (8 - j)
        if carry:
            if i + 1 >= nbytes:
                raise ValueError("base-32 string has bits beyond the encoded bytes")
            out[i + 1] |= carry
    return bytes(out)
