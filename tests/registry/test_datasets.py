"""dmlviz.registry.datasets is the one list of datasets: the loaders, the config's per-dataset
defaults, the noise lab's form and the CLI read each dataset's entry."""

import subprocess
import sys

import pytest

from dmlviz.registry.datasets import (
    DATASET_ENTRIES,
    DATASETS,
    NEEDS_NO_ROOT,
    PROTOCOLS,
    TEST_ROOT_DATASETS,
)


def test_the_datasets_and_their_groups():
    assert DATASETS == ("digits", "omniglot", "cub200", "cars196", "sop", "inshop", "folder", "csv")
    assert NEEDS_NO_ROOT == ("digits",)
    assert TEST_ROOT_DATASETS == ("omniglot", "folder")
    assert PROTOCOLS["digits"] == ("classes", "samples")


def test_the_package_reads_the_registry():
    import dmlviz.data
    from dmlviz.train.config import DATASET_DEFAULTS
    from dmlviz.views import lab

    assert dmlviz.data.DATASETS is DATASETS and dmlviz.data.PROTOCOLS is PROTOCOLS
    assert dmlviz.data.TEST_ROOT_DATASETS is TEST_ROOT_DATASETS
    assert lab.NEEDS_NO_ROOT is NEEDS_NO_ROOT
    assert {name: entry.defaults for name, entry in DATASET_ENTRIES.items()} == DATASET_DEFAULTS


@pytest.mark.parametrize("name", DATASETS)
def test_each_entry_loads_and_its_defaults_are_valid_settings(name):
    from dmlviz.data import split_layout
    from dmlviz.train.config import BASE_CONFIG, default_config

    entry = DATASET_ENTRIES[name]
    assert callable(entry.load())
    assert entry.layout is None or callable(entry.layout_function())
    assert set(entry.defaults) <= set(BASE_CONFIG)
    assert default_config(name, "rll")["epochs"] == entry.defaults["epochs"]  # validated
    if entry.layout is None:
        layout = split_layout(name)
        assert (layout.name, layout.held_out) == (entry.layout_name, entry.held_out)


def test_the_registry_loads_without_torch():
    code = (
        "import sys, dmlviz.registry.settings, dmlviz.registry.datasets, dmlviz.cli.train\n"
        "assert 'torch' not in sys.modules, 'the registry imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
