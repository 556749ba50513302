"""What a build reports while it runs. Reporters observe; they never drive the build."""

from __future__ import annotations

from typing import Protocol

from engine.derive.actions import Action
from engine.derive.derivation import Derivation


class Reporter(Protocol):
    def action_started(self, drv: Derivation, action: Action) -> None: ...

    def action_finished(self, drv: Derivation, action: Action, cached: bool) -> None: ...

    def derivation_started(self, drv: Derivation) -> None: ...

    def derivation_finished(self, drv: Derivation, built: bool) -> None: ...

    # A reporter may also define ``output_ready(drv, rel, file)``: called once an action that
    # ran has written ``rel`` (``lib/libx.so``) of the output tree, final, at ``file`` in the
    # build folder (engine.build.builder.DerivationBuild._announce). It must not write there.


class Silent:
    """A reporter that reports nothing."""

    def action_started(self, drv: Derivation, action: Action) -> None:
        pass

    def action_finished(self, drv: Derivation, action: Action, cached: bool) -> None:
        pass

    def derivation_started(self, drv: Derivation) -> None:
        pass

    def derivation_finished(self, drv: Derivation, built: bool) -> None:
        pass
