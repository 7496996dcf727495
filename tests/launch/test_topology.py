"""The TPU slice table: hosts and chips for the slices the launchers are tested on."""

import pytest

from launch.topology import TOPOLOGIES, get_topology


@pytest.mark.parametrize(
    "name, accelerator_type, hosts, chips_per_host",
    [
        ("v5e-8", "v5litepod-8", 1, 8),
        ("v5e-16", "v5litepod-16", 4, 4),
        ("v4-32", "v4-32", 4, 4),
        ("v4-8", "v4-8", 1, 4),
        ("v5p-8", "v5p-8", 1, 4),
        ("v5p-32", "v5p-32", 4, 4),
        ("v6e-16", "v6e-16", 4, 4),
    ],
)
def test_known_slices(name, accelerator_type, hosts, chips_per_host):
    topology = get_topology(name)
    assert (topology.accelerator_type, topology.hosts, topology.chips_per_host) == (
        accelerator_type,
        hosts,
        chips_per_host,
    )
    assert topology.multi_host == (hosts > 1)


def test_gcloud_spelling_is_an_alias():
    assert get_topology("v5litepod-16") is get_topology("v5e-16")
    assert get_topology(" V5E-16 ") is get_topology("v5e-16")


def test_every_row_is_consistent():
    for name, topology in TOPOLOGIES.items():
        assert topology.name == name
        grid = 1
        for dim in topology.xm_topology.split("x"):
            grid *= int(dim)
        assert grid == topology.chips, name  # the XManager grid requests the slice's chips
        cores_or_chips = int(name.rsplit("-", 1)[1])
        per_chip = 1 if name.startswith(("v5e", "v6e")) else 2  # v2-v5p names count cores
        assert cores_or_chips == topology.chips * per_chip, name


@pytest.mark.parametrize("bad", ["v5e-17", "", "tpu", "v9-8"])
def test_unknown_slice_names_the_flag(bad):
    with pytest.raises(ValueError, match=r"--tpu=.*not a known TPU slice.*v5e-16"):
        get_topology(bad)
    with pytest.raises(ValueError, match=r"--accelerator="):
        get_topology(bad, flag="--accelerator")
