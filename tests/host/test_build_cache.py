"""build_cache: a product is built once per input hash, by one process at a time, and appears whole or not at all."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from realm_hil.build_cache import build_once, content_key


def test_second_call_reuses_the_product(tmp_path):
    calls = []

    def build(partial: Path) -> None:
        calls.append(partial)
        partial.write_text("product")

    first = build_once(tmp_path, "lib.so", build)
    second = build_once(tmp_path, "lib.so", build)
    assert (first.built, second.built) == (True, False)
    assert first.path == second.path == tmp_path / "lib.so"
    assert first.path.read_text() == "product"
    assert len(calls) == 1 and calls[0] != first.path


def test_product_appears_only_when_whole(tmp_path):
    def build(partial: Path) -> None:
        partial.write_text("half")
        assert not (tmp_path / "lib.so").exists()
        partial.write_text("whole")

    assert build_once(tmp_path, "lib.so", build).path.read_text() == "whole"


def test_failed_build_leaves_nothing_to_reuse(tmp_path):
    def broken(partial: Path) -> None:
        partial.write_text("half")
        raise RuntimeError("compiler failed")

    with pytest.raises(RuntimeError, match="compiler failed"):
        build_once(tmp_path, "lib.so", broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]
    done = build_once(tmp_path, "lib.so", lambda partial: partial.write_text("fixed"))
    assert done.built and done.path.read_text() == "fixed"


def test_rebuild_replaces_the_product(tmp_path):
    build_once(tmp_path, "stamp", lambda partial: partial.write_text("old"))
    again = build_once(tmp_path, "stamp", lambda partial: partial.write_text("new"), rebuild=True)
    assert again.built and again.path.read_text() == "new"


def _build_slowly(directory: str) -> bool:
    def build(partial: Path) -> None:
        with open(Path(directory) / "builds.log", "a") as log:
            log.write("built\n")
        time.sleep(0.5)  # long enough that the other process asks while this one builds
        partial.write_text("product")

    return build_once(Path(directory), "lib.so", build).built


def test_concurrent_callers_build_once(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        built = pool.map(_build_slowly, [str(tmp_path)] * 2)
    assert sorted(built) == [False, True]
    assert (tmp_path / "builds.log").read_text() == "built\n"


def test_key_covers_contents_names_and_settings_not_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x.v").write_text("module x; endmodule\n")
    (b / "x.v").write_text("module x; endmodule\n")
    (b / "y.v").write_text("module x; endmodule\n")
    key = content_key([a / "x.v"], 8, "5.048")
    # the same files elsewhere (a checkout, an installed wheel) share one build
    assert content_key([b / "x.v"], 8, "5.048") == key
    assert content_key([b / "y.v"], 8, "5.048") != key
    assert content_key([a / "x.v"], 16, "5.048") != key
    (b / "x.v").write_text("module x; wire w; endmodule\n")
    assert content_key([b / "x.v"], 8, "5.048") != key
