"""Where the app's folders are: one place, so nothing else hard-codes a path."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def configs_dir() -> Path:
    return PROJECT_ROOT / "configs"


def model_config_dir() -> Path:
    return configs_dir() / "model"


def outputs_dir() -> Path:
    return Path(os.environ.get("I2V_OUTPUTS", PROJECT_ROOT / "outputs")).resolve()


def logs_dir() -> Path:
    return Path(os.environ.get("I2V_LOGS", PROJECT_ROOT / "logs")).resolve()
