"""Camera perception for the vision-in-the-loop experts: find a coloured object in an RGB frame
and place it in the world by back-projecting its pixel centroid through the MuJoCo camera.

Pipeline (one frame, no memory):

1. :func:`colour_mask`: pixels whose HSV colour (OpenCV units: hue 0..179, saturation and value
   0..255) lies in a :class:`HsvRange`;
2. :func:`largest_blob_centroid`: the centroid (u, v) in pixels of the mask's largest
   8-connected blob, or None when no blob reaches ``min_area`` pixels;
3. :func:`pixel_ray`: the world ray through that pixel of a MuJoCo camera (``data.cam_xpos``,
   ``data.cam_xmat``, ``model.cam_fovy``; square pixels, the principal point at the centre);
4. :func:`ray_plane_point`: where the ray meets the horizontal plane z = ``height``.

Pixel coordinates are continuous: pixel (column i, row j) covers [i, i+1) x [j, j+1), so its
centre is (i + 0.5, j + 0.5); u grows to the right, v downwards (row 0 is the top of the frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np


@dataclass(frozen=True)
class HsvRange:
    """A colour class in OpenCV's 8-bit HSV: hue in [0, 180) (a range may wrap through 0),
    saturation and value in [0, 255].

    Attributes:
        hue_low, hue_high: hue bounds, inclusive; ``hue_low > hue_high`` wraps through 0 (red).
        min_saturation: least saturation; rejects the grey/beige table and white highlights.
        min_value: least brightness; rejects pixels too dark for their hue to be trusted.
    """

    hue_low: int
    hue_high: int
    min_saturation: int
    min_value: int


#: The red of robofail's cube (rgba .85 .2 .15: hue ~3 under the scene's lights, saturation
#: ~205 on its faces). Saturation 120 keeps the cube's anti-aliased rim out of the table's beige
#: (which stays below ~100); value 50 keeps hue noise of near-black pixels out.
RED = HsvRange(hue_low=170, hue_high=10, min_saturation=120, min_value=50)


def colour_mask(image: np.ndarray, colour: HsvRange) -> np.ndarray:
    """Boolean (H, W) mask of the pixels of an (H, W, 3) uint8 RGB frame in ``colour``."""
    import cv2

    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    if colour.hue_low <= colour.hue_high:
        hue_ok = (hue >= colour.hue_low) & (hue <= colour.hue_high)
    else:
        hue_ok = (hue >= colour.hue_low) | (hue <= colour.hue_high)
    return hue_ok & (sat >= colour.min_saturation) & (val >= colour.min_value)


def largest_blob_centroid(mask: np.ndarray, min_area: int) -> tuple[float, float] | None:
    """Centroid (u, v) in continuous pixel coordinates of the largest 8-connected blob of an
    (H, W) boolean mask, or None when it has fewer than ``min_area`` pixels."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    if count < 2:  # label 0 is the background
        return None
    blob = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[blob, cv2.CC_STAT_AREA] < min_area:
        return None
    rows, cols = np.nonzero(labels == blob)
    return float(cols.mean()) + 0.5, float(rows.mean()) + 0.5


def pixel_ray(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    camera: int,
    pixel: tuple[float, float],
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """World ray through ``pixel`` (u, v) of camera id ``camera`` in a frame of ``size``
    (height, width): (origin (3,) m, unit direction (3,)). Needs ``mj_forward``-fresh
    ``data.cam_xpos``/``cam_xmat``. A MuJoCo camera looks along its -z axis, x to the right of
    the frame, y up; ``cam_fovy`` is the vertical field of view in degrees."""
    height, width = size
    focal = (height / 2.0) / math.tan(math.radians(float(model.cam_fovy[camera])) / 2.0)
    u, v = pixel
    in_camera = np.array([(u - width / 2.0) / focal, -(v - height / 2.0) / focal, -1.0])
    direction = data.cam_xmat[camera].reshape(3, 3) @ in_camera
    return data.cam_xpos[camera].copy(), direction / np.linalg.norm(direction)


def ray_plane_point(origin: np.ndarray, direction: np.ndarray, height: float) -> np.ndarray | None:
    """Point (3,) m where the ray (origin (3,), direction (3,)) meets the plane z = ``height``,
    or None when the ray is parallel to it or meets it behind the origin."""
    if abs(direction[2]) < 1e-9:
        return None
    distance = (height - origin[2]) / direction[2]
    return origin + distance * direction if distance > 0 else None


def locate_on_plane(
    image: np.ndarray,
    model: mujoco.MjModel,
    data: mujoco.MjData,
    camera: int,
    colour: HsvRange,
    height: float,
    *,
    min_area: int = 4,
) -> np.ndarray | None:
    """World position (3,) m of the largest ``colour`` blob in ``image`` ((H, W, 3) uint8 RGB,
    rendered by camera id ``camera``), assuming the blob's centroid lies on the plane z =
    ``height``; None when no blob of ``min_area`` pixels is visible."""
    pixel = largest_blob_centroid(colour_mask(image, colour), min_area)
    if pixel is None:
        return None
    origin, direction = pixel_ray(model, data, camera, pixel, image.shape[:2])
    return ray_plane_point(origin, direction, height)
