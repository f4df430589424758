"""Jobs: work done by another process, and how to tell whether that process still runs.

``process.py``   liveness (one rule for every record that names a process), starting a detached
                 child, waiting for one, stopping one with everything it started
``lock.py``      locks held by one process while it lives (``filelock``): ``OsLock``, the one way
                 to take or probe such a lock, and a run's ``TrainingLock``
``progress.py``  a background job's progress record: state, stage, how far, its process

Import the modules themselves: ``dmlviz.runs.atomic`` needs ``process``, while ``lock`` and
``progress`` write through ``dmlviz.runs``, so this package imports none of them.
"""
