"""Campaigns: the same characterize grid gives byte-identical results in-process, on a pool and on Ray, survives
killed workers and a killed driver, records failed points, and seeds points by key, not by order."""

import copy
import dataclasses
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import realm_hil
from realm_hil.abft.characterization import run_characterization
from realm_hil.abft.characterization_sweep import (
    CharacterizeConfig,
    CharacterizeJob,
    CharacterizePoint,
    Grid,
    plan_points,
    prepare,
)
from realm_hil.campaign import CampaignFailed, point_key, point_seed, run_campaign
from realm_hil.campaign.executors import InProcess, make_executor
from realm_hil.campaign.pool import Pool
from realm_hil.remote.protocol import TOKEN_ENV
from realm_hil.sweep import SweepConfig, sweep_clock
from realm_hil.sweep_campaign import run_clock_campaign
from realm_hil.workload import random_workload

# a dozen points: two components in two layer groups, three MSDs (the one in the middle is near the onset)
CONFIG = CharacterizeConfig(tokens=32, window=32, components=("o", "q"), layer_groups={"a": "0", "b": "29"},
                            grid=Grid((10, 20, 30), (0,)))


TOKEN = "campaign-test-token"


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the module (ray.init is slow): two CPUs and two board resources.

    Its workers inherit the environment: the token of the served boards reaches them as a user's would.
    """
    import ray

    old = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = TOKEN
    ray.init(num_cpus=2, resources={"board_0": 1, "board_1": 1}, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    if old is None:
        del os.environ[TOKEN_ENV]
    else:
        os.environ[TOKEN_ENV] = old


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The grid in-process: today's behaviour, the oracle of the other executors."""
    out = tmp_path_factory.mktemp("in-process")
    result = run_characterization(CONFIG, out, executor=InProcess())
    assert len(result.points) == 12
    # not trivially equal: some points are critical and some are not
    assert any(p.critical for p in result.points) and not all(p.critical for p in result.points)
    return out


def _workers(directory) -> set[str]:
    return {json.loads(p.read_text())["worker"] for p in (directory / "points").iterdir()}


def kill_one_worker_after_the_first_point(kill):
    killed = []

    def progress(p):
        if p.done == 1 and not killed:
            killed.append(kill())

    return progress, killed


@pytest.mark.llm
def test_pool_gives_the_same_bytes_and_survives_a_killed_worker(tmp_path, reference):
    def kill():
        victim = multiprocessing.active_children()[0]
        os.kill(victim.pid, signal.SIGKILL)
        return victim.pid

    progress, killed = kill_one_worker_after_the_first_point(kill)
    run_characterization(CONFIG, tmp_path, executor=Pool(2), progress=progress)
    assert killed
    assert (tmp_path / "results.jsonl").read_bytes() == (reference / "results.jsonl").read_bytes()
    assert (tmp_path / "profile.yaml").read_bytes() == (reference / "profile.yaml").read_bytes()
    assert len(_workers(tmp_path)) >= 2


@pytest.mark.llm
def test_ray_gives_the_same_bytes_and_survives_a_killed_worker(tmp_path, reference, ray_cluster):
    executor = make_executor(2, "auto")

    def kill():
        pid = ray_cluster.get(executor.actors[0].pid.remote())
        os.kill(pid, signal.SIGKILL)
        return pid

    progress, killed = kill_one_worker_after_the_first_point(kill)
    run_characterization(CONFIG, tmp_path, executor=executor, progress=progress)
    assert killed
    assert (tmp_path / "results.jsonl").read_bytes() == (reference / "results.jsonl").read_bytes()
    # the killed actor came back in a new process (Ray restarted it) and finished points there
    assert not any(w.endswith(f":{killed[0]}") for w in _workers(tmp_path)) or len(_workers(tmp_path)) >= 3


@pytest.mark.llm
def test_resume_after_killing_the_driver(tmp_path, reference):
    out = tmp_path / "run"
    args = [sys.executable, "-c", "from realm_hil.cli.main import cli; cli()", "characterize", "--tokens", "32",
            "--window", "32", "--classes", "o,q", "--layers", "a=0;b=29", "--grid", "msd=10/20/30,freq=0",
            "--jobs", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list((out / "points").glob("*.json"))) < 3:
        assert driver.poll() is None and time.monotonic() < deadline, "the driver ended before 3 points"
        time.sleep(0.05)
    driver.kill()
    driver.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    assert 3 <= len(finished) < 12
    again = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    # the finished points were not recomputed, and the result is the uninterrupted one
    assert {p: (out / "points" / p).stat().st_mtime_ns for p in finished} == finished
    assert (out / "results.jsonl").read_bytes() == (reference / "results.jsonl").read_bytes()


@pytest.mark.llm
@pytest.mark.parametrize("whom, executor", [
    pytest.param("group", ["--jobs", "2"], id="pool-group"),
    pytest.param("driver", ["--jobs", "2"], id="pool-driver"),
    pytest.param("driver", ["--jobs", "2", "--cluster", "local"], id="ray-driver"),
])
def test_ctrl_c_stops_the_workers_and_leaves_a_resumable_campaign(tmp_path, reference, whom, executor):
    """Ctrl-C in a terminal interrupts every process of the job (group); `kill -INT` only the driver, which
    must then stop its workers itself: a pool's processes, or the Ray instance it started."""
    out = tmp_path / "run"
    args = [sys.executable, "-c", "from realm_hil.cli.main import cli; cli()", "characterize", "--tokens", "32",
            "--window", "32", "--classes", "o,q", "--layers", "a=0;b=29", "--grid", "msd=10/20/30,freq=0",
            "--out", str(out)]
    # its own session, as a terminal's job
    driver = subprocess.Popen([*args, *executor], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list((out / "points").glob("*.json"))) < 2:
        assert driver.poll() is None and time.monotonic() < deadline, "the driver ended before 2 points"
        time.sleep(0.05)
    (os.killpg if whom == "group" else os.kill)(driver.pid, signal.SIGINT)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 130, stderr
    # one line says so, and nothing complains after it (a terminated worker's semaphore, a traceback)
    assert stderr.rstrip().endswith("realm-hil: interrupted"), stderr[-2000:]
    # no worker or forkserver of the campaign is left behind
    deadline = time.monotonic() + 30
    while _group_alive(driver.pid):
        assert time.monotonic() < deadline, "processes of the campaign outlived Ctrl-C"
        time.sleep(0.1)
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    assert 2 <= len(finished) < 12
    # resumed in-process (no second pool or Ray start-up): the points on disk are the same whoever wrote them
    again = subprocess.run([*args, "--jobs", "1", "--resume"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert {p: (out / "points" / p).stat().st_mtime_ns for p in finished} == finished
    assert (out / "results.jsonl").read_bytes() == (reference / "results.jsonl").read_bytes()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def tiny_sweep():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=64)).eval()
    config = CharacterizeConfig(model="tiny", tokens=32, window=16, components=("o", "q"),
                                grid=Grid((4, 16, 28), (0, 2)), tolerance=0.05)
    windows = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
    return config, prepare(copy.deepcopy(model), windows, config)


def test_a_points_seed_comes_from_its_key_not_its_order(tmp_path, tiny_sweep):
    config, sweep = tiny_sweep
    points = plan_points(config, config.groups(2))
    job = CharacterizeJob(config, sweep)
    run_campaign(points, job, InProcess(), tmp_path / "forward")
    shuffled = points[5:] + points[:5][::-1]
    run_campaign(shuffled, job, InProcess(), tmp_path / "shuffled")
    forward, shuffled = (tmp_path / name / "results.jsonl" for name in ("forward", "shuffled"))
    assert forward.read_bytes() == shuffled.read_bytes()
    rows = [json.loads(line)["row"] for line in forward.read_text().splitlines()]
    assert len(rows) == len(points) and len({r["ppl"] for r in rows}) > 1


def test_point_seed_depends_on_the_campaign_seed_and_the_key_only():
    a, b = CharacterizePoint("o", "a", "0", "prefill", 10, 0), CharacterizePoint("o", "a", "0", "prefill", 11, 0)
    assert point_seed(0, a) == point_seed(0, CharacterizePoint(**dataclasses.asdict(a)))
    assert len({point_seed(0, a), point_seed(0, b), point_seed(1, a)}) == 3
    assert json.loads(point_key(a)) == dataclasses.asdict(a)


def test_a_failing_point_is_recorded_and_the_others_finish(tmp_path, tiny_sweep):
    config, sweep = tiny_sweep
    points = plan_points(dataclasses.replace(config, grid=Grid((16,), (0, 2))), config.groups(2))
    # Q.K^T is not offloaded in this sweep: no error can be injected into it, which is an error of the point
    bad = CharacterizePoint("qk", "late", "1", "prefill", 16, 0)
    with pytest.raises(CampaignFailed, match=r"1 of 9 points failed: .*qk.*no error was injected") as failure:
        run_campaign([*points[:4], bad, *points[4:]], CharacterizeJob(config, sweep), InProcess(), tmp_path)
    assert failure.value.result.computed == 9
    failed = [json.loads(p.read_text()) for p in (tmp_path / "failed").iterdir()]
    assert [f["point"]["component"] for f in failed] == ["qk"] and "\n" not in failed[0]["error"]
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == len(points) == 8


SERVE = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from realm_hil.cli.main import cli; cli()")


@pytest.fixture
def two_boards(tmp_path):
    """Two simulated dies (the twin, each its own process) behind `realm-hil serve` on loopback."""
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    servers, addresses = [], []
    try:
        for _ in range(2):
            proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--bind", "127.0.0.1:0", "--backend",
                                     "twin", "--token-file", str(token)], stderr=subprocess.PIPE, text=True)
            servers.append(proc)
            line = proc.stderr.readline()
            assert "serving twin on " in line, line
            addresses.append(line.split(" on ")[1].split(",")[0])
        yield addresses
    finally:
        for proc in servers:
            proc.send_signal(signal.SIGINT)
        for proc in servers:
            proc.communicate(timeout=30)


def test_two_served_boards_are_two_ray_resources(tmp_path, ray_cluster, two_boards):
    config = SweepConfig(backend="twin", gemms=2)
    clocks = [100.0, 110.0, 115.0, 120.0, 125.0, 130.0]
    points = run_clock_campaign(config, clocks, tmp_path, make_executor(None, "auto", two_boards), two_boards)
    # the oracle: the same sweep on a local twin of the same die, without the campaign layer
    with realm_hil.open_accelerator("twin", config.backend_options()) as twin:
        expected = sweep_clock(twin, random_workload(count=2, seed=0), clocks)
    assert [dataclasses.replace(p, bit_errors=list(p.bit_errors)) for p in points] == [
        dataclasses.replace(p, bit_errors=list(p.bit_errors)) for p in expected]
    assert points[0].elements_err == 0 and points[-1].elements_err > 0
    # both boards served points, each through the one worker that held it
    boards = {json.loads(p.read_text())["worker"].split(" board ")[1] for p in (tmp_path / "points").iterdir()}
    assert boards == set(two_boards)


def test_compare_clocks_as_campaign_points_match_the_plain_comparison(tmp_path):
    from realm_hil.compare import summary_table
    from realm_hil.compare.campaign import run_comparison_campaign
    from realm_hil.compare.jobs import CompareConfig, run_comparison

    config = CompareConfig(backend="twin", workload="random", gemms=2, clocks_mhz=(124.0, 132.0))
    plain = run_comparison(config)
    pooled = run_comparison_campaign(config, tmp_path, Pool(2))
    assert summary_table(pooled) == summary_table(plain)
    for mine, theirs in zip(pooled.clocks, plain.clocks, strict=True):
        assert mine.distances == theirs.distances
        for name, profile in theirs.profiles.items():
            for field in dataclasses.fields(profile):
                a, b = getattr(mine.profiles[name], field.name), getattr(profile, field.name)
                assert (a.dtype == b.dtype and np.array_equal(a, b)) if isinstance(b, np.ndarray) else a == b
    # the statistical models drew errors (their streams come from each clock's place in the list)
    assert all(c.profiles["realm"].elements_err > 0 for c in plain.clocks)


@pytest.mark.llm
def test_run_grid_on_ray_gives_the_rows_of_the_plain_run(tmp_path, ray_cluster):
    from realm_hil.experiment import RunConfig, run_experiment
    from realm_hil.experiment_campaign import run_experiment_campaign

    # the twin below its first errors and at two clocks in its error band, both error models
    config = RunConfig(backend="twin", tokens=32, window=32, clocks_mhz=[100.0, 118.0, 120.0],
                       policies=["none", "correct"], error_models=["timing", "realm"], layers="0-1")

    def rows(report) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in report.to_dict()["rows"]]

    # the oracle: the same grid in one process, without the campaign layer
    plain = rows(run_experiment(config))
    assert any(r["tiles_err"] > 0 for r in plain) and any(r["tiles_err"] == 0 for r in plain)
    assert rows(run_experiment_campaign(config, tmp_path, make_executor(2, "auto"))) == plain
    # the clocks ran in Ray's worker processes, not in the driver
    assert all(f":{os.getpid()}" not in worker for worker in _workers(tmp_path))


@pytest.mark.llm
def test_bench_campaign_times_both_executors_on_the_same_points():
    from realm_hil.benchmarks import campaign as bench

    tiny = dataclasses.replace(CONFIG, components=("q",), layer_groups={"a": "0"}, grid=Grid((10, 20), (0,)))
    result = bench.bench_campaign(jobs=2, config=tiny)
    assert result["points"] == 2 and result["identical_results"]
    for name in ("in_process", "pool"):
        assert 0 < result[f"{name}_first_point_seconds"] <= result[f"{name}_seconds"]
        assert result[f"{name}_points_per_s"] == pytest.approx(2 / result[f"{name}_seconds"])
    assert result["speedup"] == pytest.approx(result["pool_points_per_s"] / result["in_process_points_per_s"])
