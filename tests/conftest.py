"""Shared test setup: a quiet, deterministic, CPU-only environment (paths live in shared_files)."""

import os

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")  # UMAP on tiny test data: skip the 30-40 s JIT
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
