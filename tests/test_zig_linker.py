"""rustc's linker on zig targets (engine/toolchain/zig_linker.py) reads response files: rustc
passes its arguments as ``@FILE`` when they are too long for the system, and the wrapper must
translate what is inside (``-lgcc_eh`` to zig's ``-lunwind``) and hand zig a response file of its
own when its command line would be as long. Real zig links a real aarch64 program; qemu runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.toolchain import zig_linker
from engine.toolchain.flags import OPT_FLAGS
from engine.toolchain.machine import zig

TARGET = "aarch64-linux-musl"
# A debug target's flags, as recipe passes them: the libc zig builds for them is the one
# tests/warm_zig.py put in the shared cache.
FLAGS = ["-target", TARGET, "-mcpu=baseline", *OPT_FLAGS["debug"], "-fno-sanitize=all"]


def test_a_response_file_reads_as_gnu_tools_read_it(tmp_path: Path) -> None:
    args = ["-o", "out dir/prog", "it's", 'say "hi"', "back\\slash", "", "tab\there", "-lgcc_eh"]
    written = zig_linker.response_file(args, str(tmp_path))
    assert zig_linker.expand([f"@{written}"]) == args
    # As gcc and rustc write them: quotes group, a backslash takes the next character; a
    # response file may name another; ``@`` of no file stays an argument.
    (tmp_path / "inner").write_text("-L'a b' \"c d\"\n\\@x\n")
    (tmp_path / "outer").write_text(f"-o prog\n@{tmp_path / 'inner'}\n@nosuch\n")
    assert zig_linker.expand(["-s", f"@{tmp_path / 'outer'}"]) == [
        "-s", "-o", "prog", "-La b", "c d", "@x", "@nosuch"]


@pytest.mark.slow
@pytest.mark.parametrize("long", [False, True], ids=["short", "longer-than-a-command-line"])
def test_rustc_s_response_file_links_a_program_that_runs_on_its_target(
        tmp_path: Path, long: bool) -> None:
    found = zig()
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if not found.path or qemu is None:
        pytest.skip("needs zig (the cross extra) and qemu-user")
    cache = os.environ.get("RECIPE_ZIG_CACHE") or str(tmp_path / "zig-cache")
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": cache, "ZIG_LOCAL_CACHE_DIR": cache,
           "RECIPE_ZIG": found.path, "RECIPE_ZIG_TARGET": TARGET}
    (tmp_path / "main.c").write_text('#include <stdio.h>\nint main(void) { puts("linked"); }\n')
    obj = tmp_path / "with space" / "main.o"
    obj.parent.mkdir()
    subprocess.run([found.path, "cc", *FLAGS, "-c", "-o", obj, tmp_path / "main.c"],
                   env=env, check=True, timeout=600)
    out = tmp_path / "out dir" / "prog"
    out.parent.mkdir()
    # zig has no libgcc_eh: the wrapper passes -lunwind.
    args = [*FLAGS[2:], "-static", str(obj), "-o", str(out), "-lgcc_eh"]
    if long:  # past the wrapper's own limit: zig then gets a response file too
        folder = tmp_path / ("d" * 200)
        folder.mkdir()
        args += [f"-L{folder}"] * 400
    (tmp_path / "rsp").write_text(
        "".join(a.replace("\\", "\\\\").replace(" ", "\\ ") + "\n" for a in args))  # as rustc
    linked = subprocess.run([sys.executable, "-I", zig_linker.__file__, f"@{tmp_path / 'rsp'}"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert linked.returncode == 0, linked.stderr
    ran = subprocess.run([qemu, out], capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout) == (0, "linked\n")
