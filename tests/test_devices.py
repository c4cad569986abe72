import pytest

from helpers.devices import available_devices, check_device, check_memory
from helpers.errors import DeviceError, NotEnoughMemoryError
from helpers.presets import get_preset


def test_cpu_is_listed_with_a_full_name():
    devices = available_devices()
    assert devices.get("CPU")


def test_unknown_device_is_refused_with_the_list():
    assert check_device("cpu") == "CPU"
    with pytest.raises(DeviceError, match="Available: CPU"):
        check_device("TPU")


def test_memory_check_names_a_smaller_preset():
    blog = get_preset("qwen3-8b")
    with pytest.raises(NotEnoughMemoryError, match="qwen3-1.7b"):
        check_memory(blog, "run", available_gb=6.0)
    with pytest.raises(NotEnoughMemoryError, match=r"pre-converted"):
        check_memory(blog, "convert", available_gb=12.0)
    assert check_memory(get_preset("tiny"), "run", available_gb=2.0) == 2.0
