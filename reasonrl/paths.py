"""Locations of files that ship with reasonrl."""

import importlib.util
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"


def _configs_dir() -> Path:
    """The recipes: the installed package reasonrl.configs (setup.py maps the repository's
    configs/ onto it), or configs/ beside the package in a source tree that is not installed."""
    try:
        spec = importlib.util.find_spec("reasonrl.configs")
    except ImportError:
        spec = None
    if spec is not None and spec.origin:
        return Path(spec.origin).resolve().parent
    return PACKAGE_DIR.parent / "configs"


CONFIGS_DIR = _configs_dir()


def asset(*parts: str) -> Path:
    """Path of a shipped data file, e.g. asset("corpus", "gsm8k_train.txt")."""
    path = ASSETS_DIR.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"reasonrl asset {path} is missing from this installation")
    return path


def recipe(name: str):
    """The module of configs/<name>.py, for a recipe that builds on another one:
    `grpo = recipe("grpo"); config = grpo.get_config()` (works from any working directory)."""
    path = CONFIGS_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no recipe {path}")
    spec = importlib.util.spec_from_file_location(f"reasonrl_recipe_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
