"""``python -m dmlviz.presets``: write the paper presets (``paper/<dataset>.json``) again from the
registry, after a loss or one of its hyperparameters changed there."""

from dmlviz.presets import write_paper_presets

for path in write_paper_presets():
    print(f"wrote {path}")
