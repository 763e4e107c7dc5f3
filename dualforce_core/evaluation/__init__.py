"""Evaluation: held-out split by identity, metrics over generated and ground-truth clips, reports.

Nothing is re-exported here: the config schema imports `evaluation.config`, and this package must stay
light to import (no torch, no onnxruntime) for that.
"""
