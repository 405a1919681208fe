"""board_sensors against fake sysfs trees laid out as the XADC and AMS IIO drivers lay them out.

The oracle is the system monitors' transfer functions from the user guides (UG480 for the 7-series
XADC, UG580 for the UltraScale+ SYSMON behind the AMS), applied to the raw codes; the drivers' integer
offsets make the IIO result differ from them by less than one code's worth.
"""

from __future__ import annotations

import threading

import pytest

from realm_hil.board_sensors import SensorsUnavailable, find_sensors

# what the drivers print: IIO_VAL_FRACTIONAL_LOG2 as "%d.%09u", IIO_VAL_INT as "%d"
XADC_TEMP_SCALE = "123.040771484"  # 503975 / 2^12
XADC_TEMP_OFFSET = "-2219"  # -((273150 << 12) / 503975), C division
XADC_3V_SCALE = "0.732421875"  # 3000 / 2^12
AMS_TEMP_SCALE = "7.771514892"  # 509314 / 2^16
AMS_TEMP_OFFSET = "-36058"  # -((280230 << 16) / 509314)
AMS_3V_SCALE = "0.045776367"  # 3000 / 2^16


def ug480_celsius(code: int) -> float:
    return code * 503.975 / 4096 - 273.15


def ug580_celsius(code: int) -> float:
    return code * 509.3140064 / 65536 - 280.2308787


def device(root, index: int, name: str, files: dict[str, str]):
    path = root / f"iio:device{index}"
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    for file, text in files.items():
        (path / file).write_text(text + "\n")
    return path


def xadc_files(temp_code: int, vccint_code: int) -> dict[str, str]:
    return {
        "in_temp0_raw": str(temp_code), "in_temp0_offset": XADC_TEMP_OFFSET, "in_temp0_scale": XADC_TEMP_SCALE,
        # vccaux first in number, so a reader that takes the first voltage channel reads 1.8 V
        "in_voltage1_vccaux_raw": "2458", "in_voltage1_vccaux_scale": XADC_3V_SCALE,
        "in_voltage0_vccint_raw": str(vccint_code), "in_voltage0_vccint_scale": XADC_3V_SCALE,
        "in_voltage2_vccbram_raw": "1367", "in_voltage2_vccbram_scale": XADC_3V_SCALE,
        "sampling_frequency": "961538",
    }


def test_xadc_of_a_zynq_7000(tmp_path):
    device(tmp_path, 0, "iio_hwmon_other", {"in_voltage0_raw": "1"})
    device(tmp_path, 1, "xadc", xadc_files(temp_code=2684, vccint_code=1370))
    sensors = find_sensors(tmp_path)
    assert sensors.driver == "xadc" and sensors.device.name == "iio:device1"
    reading = sensors.read()
    assert reading.die_temp_c == pytest.approx(ug480_celsius(2684), abs=503.975 / 4096)
    assert 57 < reading.die_temp_c < 57.5
    assert reading.vccint_v == pytest.approx(1370 * 3 / 4096, abs=1e-9)  # 1.003 V
    (sensors.temperature.raw).write_text("2700\n")  # read afresh every time
    assert sensors.read().die_temp_c > reading.die_temp_c


def ams_files() -> dict[str, str]:
    """The AMS as Xilinx's kernels name it: PS channels first, then the PL's; temperatures and voltages
    numbered apart, each with its name in the file names."""
    return {
        "in_temp0_ps_temp_raw": "43000", "in_temp0_ps_temp_offset": AMS_TEMP_OFFSET,
        "in_temp0_ps_temp_scale": AMS_TEMP_SCALE,
        "in_temp1_remote_temp_raw": "42000", "in_temp1_remote_temp_offset": AMS_TEMP_OFFSET,
        "in_temp1_remote_temp_scale": AMS_TEMP_SCALE,
        "in_voltage0_vccpsintlp_raw": "18700", "in_voltage0_vccpsintlp_scale": AMS_3V_SCALE,
        "in_temp2_pl_temp_raw": "42345", "in_temp2_pl_temp_offset": AMS_TEMP_OFFSET,
        "in_temp2_pl_temp_scale": AMS_TEMP_SCALE,
        "in_voltage11_vccint_raw": "18650", "in_voltage11_vccint_scale": AMS_3V_SCALE,
        "in_voltage12_vccaux_raw": "39300", "in_voltage12_vccaux_scale": AMS_3V_SCALE,
    }


@pytest.mark.parametrize("name", ["xilinx-ams", "ams"])
def test_ams_of_a_zynq_ultrascale_plus(tmp_path, name):
    device(tmp_path, 0, name, ams_files())
    sensors = find_sensors(tmp_path)
    assert sensors.driver == name and sensors.temperature.raw.name == "in_temp2_pl_temp_raw"
    reading = sensors.read()
    assert reading.die_temp_c == pytest.approx(ug580_celsius(42345), abs=509.314 / 65536)  # the PL's, ~48.8
    assert reading.vccint_v == pytest.approx(18650 * 3 / 65536, abs=1e-8)  # 0.854 V


def test_channels_named_by_label_files(tmp_path):
    """A driver that names its channels in *_label files instead of in the file names."""
    files = {"in_temp0_raw": "40000", "in_temp0_label": "ps_temp", "in_temp1_raw": "42345", "in_temp1_label": "pl_temp",
             "in_temp_offset": AMS_TEMP_OFFSET, "in_temp_scale": AMS_TEMP_SCALE,  # shared by type
             "in_voltage3_raw": "18650", "in_voltage3_label": "vccint", "in_voltage3_scale": AMS_3V_SCALE,
             "in_voltage4_raw": "39300", "in_voltage4_label": "vccaux", "in_voltage4_scale": AMS_3V_SCALE}
    device(tmp_path, 2, "xilinx-ams", files)
    reading = find_sensors(tmp_path).read()
    assert reading.die_temp_c == pytest.approx(ug580_celsius(42345), abs=509.314 / 65536)
    assert reading.vccint_v == pytest.approx(18650 * 3 / 65536, abs=1e-8)


def test_unnamed_channels_are_refused_not_guessed(tmp_path):
    """Mainline's AMS names no channel: which temperature is the PL's cannot be told from sysfs."""
    files = {f"in_temp{i}_raw": "42000" for i in (0, 1, 13)}
    files.update({f"in_voltage{i}_raw": "18650" for i in (2, 3, 14)})
    device(tmp_path, 0, "xilinx-ams", files)
    with pytest.raises(SensorsUnavailable, match="has not a temp channel named pl_temp"):
        find_sensors(tmp_path)


def test_no_system_monitor(tmp_path):
    with pytest.raises(SensorsUnavailable, match="no IIO device named ams, xadc, xilinx-ams"):
        find_sensors(tmp_path)
    device(tmp_path, 0, "xadc", {"in_temp0_raw": "2684", "in_temp0_scale": XADC_TEMP_SCALE})
    with pytest.raises(SensorsUnavailable, match="voltage channel named vccint"):
        find_sensors(tmp_path)


@pytest.mark.sim
def test_a_board_reports_its_sensors_locally_and_to_a_served_client(tmp_path, monkeypatch):
    """open_board attaches the system monitor to the overlay's accelerator (here the Verilated one in its
    place); its info(), which `realm-hil serve` sends to the workstation, carries the readings."""
    import realm_hil
    from realm_hil import board_sensors
    from realm_hil.backends import board, pynq_backend
    from realm_hil.governor import die_reading
    from realm_hil.offloaded import sensor_readings
    from realm_hil.remote.client import open_remote
    from realm_hil.remote.server import RemoteServer

    device(tmp_path, 0, "xadc", xadc_files(temp_code=2684, vccint_code=1370))
    monkeypatch.setattr(board, "find_sensors", lambda: board_sensors.find_sensors(tmp_path))
    monkeypatch.setattr(board, "find_pynq_devices", lambda: [])
    monkeypatch.setenv("BOARD", "Pynq-Z2")
    monkeypatch.setattr(pynq_backend, "open_overlay", lambda name, manifest: pynq_backend.open_sim(8))
    with realm_hil.open_accelerator("board") as acc:
        acc.name = "board"
        info = acc.info()
        assert info["die_temp_c"] == pytest.approx(ug480_celsius(2684), abs=0.13)
        assert info["vccint_v"] == pytest.approx(1370 * 3 / 4096)
        server = RemoteServer(acc, "sensor-token", "127.0.0.1:0")
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with open_remote(server.address, "sensor-token", timeout=10) as remote:
                assert sensor_readings(remote) == (info["die_temp_c"], info["vccint_v"])
                # what a governor's trace records with each statistics window on the board
                tj, _, _, _, vccint = die_reading(remote)
                assert (tj, vccint) == (info["die_temp_c"], info["vccint_v"])
        finally:
            server.close()
            thread.join(5)


def test_a_board_without_a_system_monitor_warns(tmp_path, monkeypatch):
    from realm_hil.backends import board

    monkeypatch.setattr(board, "find_pynq_devices", lambda: [])
    monkeypatch.setenv("BOARD", "Pynq-Z2")

    class Opened:
        sensors = None

    monkeypatch.setattr("realm_hil.backends.pynq_backend.open_overlay", lambda name, manifest: Opened())
    monkeypatch.setattr(board, "find_sensors", lambda: find_sensors(tmp_path))
    with pytest.warns(UserWarning, match="no die temperature or VCCINT in the results: no IIO device named"):
        assert board.open_board().sensors is None
