"""Recipes: one job config per file (`get_config()`), run with
`python -m reasonrl.main --config=configs/<recipe>.py`. Installed as the package
`reasonrl.configs`, so `reasonrl.paths.recipe(name)` and the embedded default job (demo.py) work
from any install."""
