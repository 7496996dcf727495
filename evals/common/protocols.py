"""Published evaluation settings by name (``/work/shared/docs/methods.md`` section 6).

A protocol sets the sampling flags and the prompt template; any flag given explicitly on the
command line wins. Without a protocol, ``DEFAULT_SETTINGS`` apply.

=============== ==== ===== ===== ============== ============================ ===============
name            T    top_p top_k max_new_tokens num_samples                  prompt_template
=============== ==== ===== ===== ============== ============================ ===============
r1              0.6  0.95  0     32768          64 (math500: 4, open-r1)     r1
qwen_math       0    1.0   0     2048           1 (greedy)                   qwen_math
qwen_math_maj8  0.7  0.8   0     2048           8                            qwen_math
=============== ==== ===== ===== ============== ============================ ===============

The diversity eval (``evals.diversity``) has protocols of its own (``kind="diversity"``; the
math binaries list only ``kind="math"`` ones):

=============== ==== ===== ===== ============== ============================ ===============
noveltybench    1.0  1.0   0     512            10 (independent samples)     plain
hivemind        1.0  0.9   0     512            50                           plain
=============== ==== ===== ===== ============== ============================ ===============

NoveltyBench: ``src/inference.py`` (k = 10, T = 1.0, max_tokens 512). Artificial Hivemind: 50
samples per query, top-p 0.9, T = 1.0; the paper gives no length limit, 512 as NoveltyBench.
"""

from __future__ import annotations

import dataclasses
import types

# Flags a protocol may set, with the values used when neither a protocol nor a flag sets them.
DEFAULT_SETTINGS = types.MappingProxyType(
    dict(
        temperature=0.6,
        top_p=0.95,
        top_k=0,
        max_new_tokens=2048,
        num_samples=1,
        prompt_template="r1",
    )
)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A named set of generation settings.

    Attributes:
        name: registry key.
        settings: flag name -> value (keys of ``DEFAULT_SETTINGS``), for every benchmark.
        num_samples_by_benchmark: benchmark -> num_samples where it differs from ``settings``.
        kind: which binaries offer it: "math" (math500, aime) or "diversity".
    """

    name: str
    settings: dict
    num_samples_by_benchmark: dict = dataclasses.field(default_factory=dict)
    kind: str = "math"

    def settings_for(self, benchmark: str) -> dict:
        """This protocol's settings for ``benchmark``."""
        settings = dict(self.settings)
        if benchmark in self.num_samples_by_benchmark:
            settings["num_samples"] = self.num_samples_by_benchmark[benchmark]
        return settings


PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol(
            "r1",
            dict(
                temperature=0.6,
                top_p=0.95,
                top_k=0,
                max_new_tokens=32768,
                num_samples=64,
                prompt_template="r1",
            ),
            {"math500": 4},
        ),
        Protocol(
            "qwen_math",
            dict(
                temperature=0.0,
                top_p=1.0,
                top_k=0,
                max_new_tokens=2048,
                num_samples=1,
                prompt_template="qwen_math",
            ),
        ),
        Protocol(
            "qwen_math_maj8",
            dict(
                temperature=0.7,
                top_p=0.8,
                top_k=0,
                max_new_tokens=2048,
                num_samples=8,
                prompt_template="qwen_math",
            ),
        ),
        Protocol(
            "noveltybench",
            dict(
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                max_new_tokens=512,
                num_samples=10,
                prompt_template="plain",
            ),
            kind="diversity",
        ),
        Protocol(
            "hivemind",
            dict(
                temperature=1.0,
                top_p=0.9,
                top_k=0,
                max_new_tokens=512,
                num_samples=50,
                prompt_template="plain",
            ),
            kind="diversity",
        ),
    )
}


def protocol_names(kind: str) -> list[str]:
    """The names of the protocols of ``kind`` ("math" or "diversity"), sorted."""
    return sorted(name for name, protocol in PROTOCOLS.items() if protocol.kind == kind)


def resolve_settings(protocol_name: str | None, benchmark: str, explicit: dict) -> dict:
    """Final values of the ``DEFAULT_SETTINGS`` flags: explicit flag > protocol > default.

    Args:
        protocol_name: a ``PROTOCOLS`` key, or None / "" for none.
        explicit: flag name -> value for the flags given on the command line (None = not given).
    """
    settings = dict(DEFAULT_SETTINGS)
    if protocol_name:
        if protocol_name not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol_name!r}; known: {sorted(PROTOCOLS)}")
        settings.update(PROTOCOLS[protocol_name].settings_for(benchmark))
    settings.update({key: value for key, value in explicit.items() if value is not None})
    return settings
