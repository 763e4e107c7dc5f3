"""The per-frame LivePortrait motion vector every stage agrees on, and its keypoint count.

The `struct_features` table, its dataset statistics, the structure tokens and the inference frontend all
take their widths from here, so the data package never has to import the network that produces them.
"""

NUM_KP = 21
# The 70-vector written per frame: exp (21×3 row-major), pitch, yaw, roll, tx, ty, tz, scale;
# `StructTokenProjector` relies on this order.
MOTION_LAYOUT = ("exp", "pitch", "yaw", "roll", "tx", "ty", "tz", "scale")
MOTION_DIM = 3 * NUM_KP + 7
