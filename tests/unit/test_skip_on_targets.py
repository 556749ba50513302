"""``skip: {part-of-a-triple: reason}``: a case skipped on some targets only."""

from __future__ import annotations

import pytest

from engine.verify.runners import host_arch, skip_reason

SKIP = {"windows": "no fork there", "aarch64-linux": "slow under qemu", "host": "native only"}


@pytest.mark.parametrize(("triple", "reason"), [
    ("x86_64-windows-gnu", "no fork there"),
    ("aarch64-linux-musl", "slow under qemu"),
    ("aarch64-linux-gnu.2.28", "slow under qemu"),
    ("host", "native only"),
    ("riscv64-linux-musl", None),
    ("wasm32-wasi", None),
    ("aarch64-macos", None),  # aarch64 but not aarch64-linux
])
def test_a_key_names_consecutive_parts_of_the_triple(triple: str, reason: str | None) -> None:
    assert skip_reason(SKIP, triple) == reason


def test_the_host_has_its_own_architecture_and_os() -> None:
    assert skip_reason({host_arch(): "here"}, "host") == "here"
    assert skip_reason({"linux-gnu": "glibc"}, "host") == "glibc"
    assert skip_reason({"gnu": "any glibc"}, "aarch64-linux-gnu.2.28") == "any glibc"
    assert skip_reason({"musl": "static"}, "aarch64-linux-gnu.2.28") is None
