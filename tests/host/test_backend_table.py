"""The backend table: every entry opens with its defaults or says why not, options are typed and
checked in one line, and the capabilities (not lists kept elsewhere) drive what `run` accepts."""

import dataclasses

import numpy as np
import pytest
from oracles import int32_matmul

import realm_hil
from realm_hil.backends.registry import TABLE, BoardOptions, SimOptions, TwinOptions, options_for
from realm_hil.errors import InputError, RealmError
from realm_hil.experiment import RunConfig


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.sim) if n == "sim" else n for n in TABLE])
def test_every_backend_opens_with_its_defaults_or_says_why_not(name, monkeypatch):
    monkeypatch.delenv("PYNQ_REMOTE_DEVICES", raising=False)  # the board entry means this machine's board
    spec = TABLE[name]
    reason = spec.unavailable()
    if reason is not None:
        assert spec.status() == f"unavailable: {reason}"
        with pytest.raises(RealmError) as exc:
            realm_hil.open_accelerator(name)
        assert one_line(exc) == reason
        return
    rng = np.random.default_rng(1)
    x, w = rng.integers(-128, 128, (13, 70), dtype=np.int8), rng.integers(-128, 128, (70, 21), dtype=np.int8)
    with realm_hil.open_accelerator(name) as acc:
        assert acc.name == name and acc.array_n == spec.options().array_n
        assert acc.operating_point == acc.nominal
        result = acc.gemm(x, w)
        assert np.array_equal(result.y, int32_matmul(x, w)) and result.stats.tiles_err == 0


@pytest.mark.parametrize("kind, fields, words", [
    ("board", {"voltage_v": 0.9}, ["board backend takes address, board_name, manifest, token", "not voltage_v"]),
    ("reference", {"seed": 3}, ["reference backend takes", "not seed"]),
    ("twin", {"waves": None, "emulate_check": True}, ["twin backend takes", "not emulate_check, waves"]),
    ("quantum", {}, ["unknown backend 'quantum'", "board, sim, twin, reference"]),
])
def test_a_field_a_backend_does_not_take_is_one_line(kind, fields, words):
    with pytest.raises(InputError) as exc:
        realm_hil.open_accelerator(kind, **fields)
    message = one_line(exc)
    assert all(word in message for word in words), message


def test_options_of_another_backend_are_refused():
    with pytest.raises(InputError) as exc:
        realm_hil.open_accelerator("twin", SimOptions())
    assert "open twin with a TwinOptions" in one_line(exc)
    with pytest.raises(InputError):
        realm_hil.open_accelerator("twin", TwinOptions(), seed=1)


def test_shared_values_become_a_backends_options():
    """The die model falls away where a backend does not model one; anything else it cannot use is refused."""
    assert options_for("twin", array_n=4, profile="kv260", seed=3, emulate_checks=True) == TwinOptions(
        array_n=4, profile="kv260", seed=3, emulate_checks=True)
    assert options_for("board", array_n=4, profile="kv260", seed=3, emulate_checks=False) == BoardOptions()
    assert options_for("board", manifest="m.json").manifest.name == "m.json"
    for kind, value, words in (
        ("board", {"emulate_checks": True}, "emulated checksums need the sim or twin backend, not board"),
        ("reference", {"emulate_checks": True}, "emulated checksums need the sim or twin backend, not reference"),
        ("board", {"voltage_v": 0.9}, "a supply voltage needs the sim, twin or reference backend, not board"),
        ("sim", {"manifest": "m.json"}, "a board name or manifest needs the board backend, not sim"),
        ("board", {"address": "host:5555", "board_name": "zcu104"}, "`realm-hil serve` loads its own"),
        ("board", {"token": "t"}, "a token is for a `realm-hil serve` host"),
    ):
        with pytest.raises(InputError) as exc:
            options_for(kind, **value)
        assert words in one_line(exc)


@pytest.mark.parametrize("name", [n for n in TABLE if n != "sim"])
def test_the_voltage_capability_is_what_the_backend_does(name, monkeypatch):
    """A backend with the voltage capability takes a supply voltage in its operating point; the board
    (tested on a simulated one in test_pynq_remote.py) refuses one."""
    spec = TABLE[name]
    if spec.unavailable() is not None:
        assert not spec.capabilities.voltage and not spec.takes("voltage_v")
        return
    with realm_hil.open_accelerator(name) as acc:
        point = dataclasses.replace(acc.nominal, voltage_v=0.95)
        assert spec.capabilities.voltage and acc.set_operating_point(point) == point == acc.operating_point


def with_capabilities(monkeypatch, name, **changes):
    spec = TABLE[name]
    monkeypatch.setitem(TABLE, name, dataclasses.replace(
        spec, capabilities=dataclasses.replace(spec.capabilities, **changes)))


def test_capabilities_drive_what_run_accepts(monkeypatch):
    assert RunConfig(backend="reference").recover_on == "accelerator"
    with_capabilities(monkeypatch, "reference", recovery=False, default_tokens=40, default_window=16,
                      models_die=True)
    config = RunConfig(backend="reference")
    assert (config.recover_on, config.tokens, config.window) == ("host", 40, 16)
    with pytest.raises(InputError, match="recover on the host, or use twin$"):
        RunConfig(backend="reference", recover_on="accelerator")
    # a backend that models the die may confirm another that does
    assert RunConfig(backend="twin", confirm_on="reference").confirm_on == "reference"
    with_capabilities(monkeypatch, "sim", models_die=False)
    with pytest.raises(InputError, match=r"other than twin \(twin, reference\), got 'sim'"):
        RunConfig(backend="twin", confirm_on="sim")
