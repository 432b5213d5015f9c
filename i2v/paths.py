"""Where the app's folders are: one place, so nothing else hard-codes a path."""
from __future__ import annotations

import os
from pathlib import Path

from i2v.core import env

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def configs_dir() -> Path:
    return PROJECT_ROOT / "configs"


def model_config_dir() -> Path:
    return configs_dir() / "model"


def outputs_dir() -> Path:
    return (PROJECT_ROOT / env.value("I2V_OUTPUTS", os.environ)).resolve()


def logs_dir() -> Path:
    return (PROJECT_ROOT / env.value("I2V_LOGS", os.environ)).resolve()
