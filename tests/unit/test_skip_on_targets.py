"""``skip: {part-of-a-triple: reason}``: a case skipped on some targets only; a cases file's
default ``newlines:``."""

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


def test_a_cases_file_sets_the_default_newlines_of_its_cases(tmp_path) -> None:  # noqa: ANN001
    from engine.documents.load import load_cases_file

    (tmp_path / "cases.yaml").write_text(
        "kind: cases\nnewlines: lf\ncases:\n"
        "  - {name: default, run: prog, expect: {stdout: ''}}\n"
        "  - {name: own, run: prog, newlines: as-is, expect: {stdout: ''}}\n"
        "  - {name: on windows, run: prog, skip: {windows: wine}, expect: {stdout: ''}}\n")
    default, own, windows = load_cases_file(tmp_path / "cases.yaml")
    assert (default.newlines, own.newlines, windows.newlines) == ("lf", "as-is", "lf")
    assert windows.skip is None and windows.skip_on == {"windows": "wine"}
