"""Gating before a measured run (issue 6): cooldown and battery floor on the loopback phone,
whose temperatures and battery follow its thermal model for real."""

import pytest
from loopback_plugin import phone_ref

from suite.session.gating import GateReading, GateTimeout, battery_floor, cooldown


@pytest.mark.loopback
def test_cooldown_waits_on_a_hot_phone_and_proceeds_when_it_cools(loopback_phone_factory, loopback_adb_server):
    # ambient 45 degC: the idle phone sits at ~47 degC battery, thermal status 2; once the room
    # is cooled (set_ambient) the skin's RC node cools the battery under 35 degC within phone minutes
    phone = loopback_phone_factory("qcom-flagship", charging=False, ambient_c=45, time_scale=40)
    said = []

    def status(msg):
        said.append(msg)
        if len(said) == 2:
            phone.set_ambient(15)

    res = cooldown(phone_ref(phone), max_temp_c=35, poll_s=0.3, timeout_s=60, status=status)
    assert res.ok and res.reason is None
    assert res.start_temps["battery"] > 40 and res.start["thermal_status"] >= 1
    assert res.end_temps["battery"] <= 35 and res.end["thermal_status"] == 0
    assert res.waited_s > 0.3 and res.polls >= 3
    assert said[0].startswith(f"cooling: {res.start['battery']:.1f} °C -> 35 °C")
    cond = res.conditions()
    assert cond["cooldown_waited_s"] == pytest.approx(res.waited_s, abs=1e-3)
    assert cond["cooldown"]["start"]["battery"] == res.start["battery"]
    # the phone the gate read is the phone's own model
    assert phone.state()["t_battery_c"] <= 35.5


@pytest.mark.loopback
def test_cooldown_times_out_with_the_numbers(loopback_phone_factory, loopback_adb_server):
    phone = loopback_phone_factory("qcom-flagship", charging=False, ambient_c=45)
    ref = phone_ref(phone)
    pattern = r"cooldown timed out after \d+ s: battery 4\d\.\d °C .*threshold 35 °C"
    with pytest.raises(GateTimeout, match=pattern) as ei:
        cooldown(ref, max_temp_c=35, timeout_s=1.0, poll_s=0.3)
    assert "thermal status 2" in str(ei.value) and ei.value.context["max_temp_c"] == 35
    # skip mode: the same facts as a reason, no exception
    res = cooldown(ref, max_temp_c=35, timeout_s=0.5, poll_s=0.3, on_timeout="skip")
    assert not res.ok and "cooldown timed out" in res.reason


@pytest.mark.loopback
def test_cooldown_on_the_hottest_sensor_and_a_fixed_delay(loopback_phone_factory, loopback_adb_server):
    phone = loopback_phone_factory("qcom-flagship", charging=False, ambient_c=15)
    ref = phone_ref(phone)
    res = cooldown(ref, max_temp_c=35, sensor="max", poll_s=0.2, delay_s=0.3)
    assert res.ok and res.waited_s >= 0.3 and res.polls == 2
    assert res.start["hottest"] is not None and res.start["hottest"] >= res.start["battery"]
    # a phone that is cool on its battery but hot on its SoC counts as hot for sensor="max"
    with pytest.raises(GateTimeout):
        cooldown(ref, max_temp_c=res.start["battery"] + 0.5, sensor="max", require_status_none=False,
                 timeout_s=0.3, poll_s=0.2)


@pytest.mark.loopback
def test_battery_floor_skips_or_waits_for_charge(loopback_phone_factory, loopback_adb_server):
    phone = loopback_phone_factory("qcom-flagship", charging=False, ambient_c=15, time_scale=200)
    ref = phone_ref(phone)
    ok = battery_floor(ref, level_min=50)
    assert ok.ok and ok.start["level_pct"] == 80 and ok.waited_s < 5
    low = battery_floor(ref, level_min=95)
    assert not low.ok and "below the floor 95%" in low.reason and low.end["level_pct"] == 80
    # plugged in: waits until the level reaches the floor (3 A into 4700 mAh, 200x time)
    phone.set_charging(True)
    res = battery_floor(ref, level_min=82, wait=True, timeout_s=60, poll_s=0.2)
    assert res.ok and res.start["level_pct"] < 82 <= res.end["level_pct"] and res.polls > 1
    assert res.conditions()["battery_floor"]["end"]["level_pct"] >= 82
    # never reaching it: times out as a skip with the numbers
    phone.set_charging(False)
    res = battery_floor(ref, level_min=99, wait=True, timeout_s=0.5, poll_s=0.2)
    assert not res.ok and "battery floor timed out" in res.reason and "floor 99%" in res.reason


def test_cooldown_with_a_reader_and_no_device():
    # the gate's loop on scripted readings: no phone needed
    temps = iter([41.2, 38.0, 34.9])
    slept = []

    def read():
        return GateReading(battery_temp_c=next(temps), level_pct=60, battery_status="Discharging", thermal_status=0)

    said = []
    res = cooldown(read, max_temp_c=35, poll_s=1.0, status=said.append, sleep=slept.append)
    assert res.ok and res.polls == 3 and slept == [1.0, 1.0]
    assert said[0].startswith("cooling: 41.2 °C -> 35 °C")
    assert res.start["battery"] == 41.2 and res.end["battery"] == 34.9


def test_unreadable_temperature_does_not_block():
    res = cooldown(lambda: GateReading(None, None, None, None), max_temp_c=35)
    assert res.ok and "no temperature readable" in res.reason
