"""Experiments: sweeps, hyperparameter search and the noise lab's launcher, one job per file.

``spec.py``       what a sweep trains (``SweepSpec``), its checks, the demo's spec, each run's config
``folder.py``     a sweep folder's files: its lock (``dmlviz.jobs``), progress log, cancel
                  requests
``runner.py``     ``train_many``, the one process pool for sweeps and tuning; ``run_sweep``
``ray_executor.py``  the same runs and trials as Ray tasks on a cluster (``--executor ray``)
``reports.py``    runs.csv, summary.csv and summary.md
``differences.py``  each loss against each other per noise rate, with intervals (seeds, classes)
``state.py``      where an experiment stands, rebuilt from its folder's files
``launcher.py``   the noise lab: start a detached sweep from a spec file, cancel it, resume it
``estimate.py``   the noise lab's cost estimate, timed on the device the sweep will train on
``tune.py``       the Optuna search on validation folds of the train split, and its confirmation
``compare.py``    a shipped preset against the paper defaults, on validation and on test

What the dashboard shows of them (the comparison text, a study's tables) is in ``dmlviz.views``.
"""
