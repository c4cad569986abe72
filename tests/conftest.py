from __future__ import annotations

import pytest

from helpers.conversion import PresetModels, prepare_preset
from helpers.presets import get_preset


@pytest.fixture(scope="session")
def tiny_models() -> PresetModels:
    """The tiny pair, converted once per session (int4 target, int8 draft)."""
    return prepare_preset(get_preset("tiny"))
