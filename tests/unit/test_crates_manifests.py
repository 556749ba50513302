"""A registry's manifests are remembered in the plan's cache against their stat data
(engine.crates.registry.Manifests): a command does not parse every crate's Cargo.toml again,
and a changed one is read anew (issue 15, point 5b)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from engine.crates import registry as registry_module
from engine.crates.registry import Registry

MANIFEST = '[package]\nname = "tiny"\nversion = "{version}"\nedition = "2021"\n'


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    loads = registry_module.tomllib.loads

    def counting(text: str) -> dict:
        parsed.append(text)
        return loads(text)

    monkeypatch.setattr(registry_module.tomllib, "loads", counting)
    return parsed


def _versions(folder: Path, memo: Path) -> list[str]:
    found = Registry(folder, memo=memo)
    versions = [str(m.version) for m in found.versions("tiny")]
    found.save()
    return versions


def test_manifests_are_remembered_and_read_again_when_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crate = tmp_path / "registry" / "tiny-1.0.0"
    crate.mkdir(parents=True)
    (crate / "Cargo.toml").write_text(MANIFEST.format(version="1.0.0"))
    (crate / "src").mkdir()
    (crate / "src" / "lib.rs").write_text("")
    memo = tmp_path / "cache" / "manifests.pickle"
    parsed = _parses(monkeypatch)
    assert _versions(tmp_path / "registry", memo) == ["1.0.0"]
    assert len(parsed) == 1 and not memo.exists()  # just written: racily clean, not kept
    time.sleep(2.1)
    assert _versions(tmp_path / "registry", memo) == ["1.0.0"] and len(parsed) == 2
    assert memo.exists()
    assert _versions(tmp_path / "registry", memo) == ["1.0.0"] and len(parsed) == 2  # kept
    # the same size, another content: the file's stat data differ, so it is read again
    (crate / "Cargo.toml").write_text(MANIFEST.format(version="1.0.1"))
    assert _versions(tmp_path / "registry", memo) == ["1.0.1"] and len(parsed) == 3
    # a damaged memo is no memo
    memo.write_bytes(b"not a pickle")
    assert _versions(tmp_path / "registry", memo) == ["1.0.1"] and len(parsed) == 4
    # a crate removed is not found from the memo
    os.remove(crate / "Cargo.toml")
    assert _versions(tmp_path / "registry", memo) == []
