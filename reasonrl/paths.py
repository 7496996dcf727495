"""Locations of files that ship with reasonrl."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"
# The repository checkout (configs/ lives beside the package in a source or editable install).
REPO_DIR = PACKAGE_DIR.parent
CONFIGS_DIR = REPO_DIR / "configs"


def asset(*parts: str) -> Path:
    """Path of a shipped data file, e.g. asset("corpus", "gsm8k_train.txt")."""
    path = ASSETS_DIR.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"reasonrl asset {path} is missing from this installation")
    return path


def recipe(name: str):
    """The module of configs/<name>.py, for a recipe that builds on another one:
    `grpo = recipe("grpo"); config = grpo.get_config()` (works from any working directory)."""
    import importlib.util

    path = CONFIGS_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no recipe {path}")
    spec = importlib.util.spec_from_file_location(f"reasonrl_recipe_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
