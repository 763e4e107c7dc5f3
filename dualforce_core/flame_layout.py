"""The per-frame FLAME vector every stage agrees on: 50 expression coefficients, then 3 jaw pose angles.

The `flame_params` table, the synthetic data's ground truth, the model config's `flame_dim` and the
FLAME head of the loss all take their width from here.
"""

FLAME_EXPRESSION_DIM = 50
FLAME_JAW_DIM = 3
FLAME_DIM = FLAME_EXPRESSION_DIM + FLAME_JAW_DIM
