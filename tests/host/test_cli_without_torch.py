"""The CLI on a PYNQ board's install: torch, transformers, scipy and matplotlib absent.

Each command runs in a subprocess whose sitecustomize makes importing any of them fail as a missing
package does. The board's own jobs (info, gemm, sweep-clock on random operands, serve) must work there
and compute what they compute with every package present; what needs the model must say in one line
which extra to install.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import realm_hil
from realm_hil.remote.client import open_remote
from realm_hil.tiling import int32_gemm

BLOCKED = ("torch", "transformers", "scipy", "matplotlib")
CLI = "import sys; from realm_hil.cli.main import cli; cli(prog_name='realm-hil')"
TOKEN = "board-without-torch"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """The environment of a process in which the blocked packages cannot be imported."""
    site = tmp_path_factory.mktemp("blocked")
    (site / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import sys

        class _NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {set(BLOCKED)!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, _NotInstalled())
    """))
    package_root = Path(realm_hil.__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(package_root)])}


def realm_hil_cli(env: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_the_blocked_packages_really_are_missing(env):
    for package in BLOCKED:
        probe = subprocess.run([sys.executable, "-c", f"import {package}"], env=env, capture_output=True, text=True)
        assert probe.returncode == 1 and f"ModuleNotFoundError: No module named '{package}'" in probe.stderr


def test_help_and_info_start(env):
    listing = realm_hil_cli(env, "--help")
    assert listing.returncode == 0, listing.stderr
    assert "run           (unavailable here: needs torch, the llm extra)" in listing.stdout
    assert "gemm          Run a random" in listing.stdout
    info = realm_hil_cli(env, "info")
    assert info.returncode == 0, info.stderr
    assert "reference  available" in info.stdout and "twin       available" in info.stdout


@pytest.mark.parametrize("backend", ["reference", pytest.param("sim", marks=pytest.mark.sim)])
def test_gemm_is_exact(env, backend):
    result = realm_hil_cli(env, "gemm", "--backend", backend, "--m", "24", "--k", "40", "--n", "16", "--seed", "5")
    assert result.returncode == 0, result.stderr
    assert "0 with errors: bit-exact vs numpy" in result.stdout


def test_governor_and_abft_recovery_run_on_a_board_without_torch(env):
    """What a board image without torch runs locally: a governed, protected GEMM stream."""
    script = textwrap.dedent("""
        import numpy as np, realm_hil
        from realm_hil.abft.recovery import ProtectedGemm
        from realm_hil.governor import GovernorConfig, govern
        rng = np.random.default_rng(0)
        gemms = [(rng.integers(-128, 128, (32, 64), dtype=np.int8), rng.integers(-128, 128, (64, 32), dtype=np.int8),
                  None) for _ in range(24)]
        with realm_hil.open_accelerator("twin") as acc:
            trace = govern(ProtectedGemm(acc, "classic", measure=True), iter(gemms),
                           GovernorConfig(window_gemms=1, step=0.1, calm_windows=1), "pynq-z2")
        print(max(r.clock_mhz for r in trace), sum(r.recomputed for r in trace), sum(r.escaped for r in trace))
    """)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    top, recomputed, escaped = result.stdout.split()
    assert float(top) > 100 and int(recomputed) > 0 and int(escaped) == 0  # climbed into errors, all recovered


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("backend", ["twin", pytest.param("sim", marks=pytest.mark.sim)])
def test_sweep_clock_on_random_operands_computes_what_it_does_with_scipy(env, tmp_path, backend):
    """The per-PE delay factors come from the normal quantile function, which scipy computed before:
    without scipy every error count must be what the sweep gives with it (and 120-130 MHz do err)."""
    args = ["sweep-clock", "--backend", backend, "--start", "100", "--stop", "130", "--steps", "4", "--gemms", "2",
            "--seed", "3"]
    without = realm_hil_cli(env, *args, "--out", str(tmp_path / "without"))
    assert without.returncode == 0, without.stderr
    assert "no plot: sweep.png needs matplotlib" in without.stderr and "plot extra" in without.stderr
    assert not (tmp_path / "without" / "sweep.png").exists()
    with_all = subprocess.run([sys.executable, "-c", CLI, *args, "--out", str(tmp_path / "with")],
                              env={**os.environ, "PYTHONPATH": env["PYTHONPATH"].split(os.pathsep)[1]},
                              capture_output=True, text=True, timeout=600)
    assert with_all.returncode == 0, with_all.stderr
    rows = _rows(tmp_path / "without" / "sweep.csv")
    assert rows == _rows(tmp_path / "with" / "sweep.csv")
    assert float(rows[0]["element_error_rate"]) == 0 and float(rows[-1]["element_error_rate"]) > 0


def test_serve_reference_answers_a_client(env, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    serving = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); " + CLI
    proc = subprocess.Popen([sys.executable, "-c", serving, "serve", "--bind", "127.0.0.1:0", "--backend",
                             "reference", "--token-file", str(token_file)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "serving reference on " in line, line + proc.stderr.read()
        address = line.split(" on ")[1].split(",")[0]
        rng = np.random.default_rng(8)
        x = rng.integers(-128, 128, (19, 70), dtype=np.int8)
        w = rng.integers(-128, 128, (70, 13), dtype=np.int8)
        with open_remote(address, TOKEN, timeout=10) as remote:
            assert np.array_equal(remote.gemm(x, w).y, int32_gemm(x, w))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err


@pytest.mark.parametrize("args", [["run", "--backend", "reference", "--tokens", "8"], ["run", "--help"],
                                  ["characterize"], ["compare"], ["eval", "--tasks", "gpl3_mc"],
                                  ["sweep-clock", "--backend", "twin", "--workload", "llm", "--steps", "2"]])
def test_what_needs_the_model_says_what_to_install(env, tmp_path, args):
    result = realm_hil_cli(env, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"realm-hil: error: realm-hil {args[0]} needs torch, which is not installed here")
    assert "its llm extra" in lines[0]
