"""Pictures for ``st.image``: images, amplified perturbations and explanation overlays,
enlarged with nearest-neighbour pixels so a 28x28 digit stays sharp on screen.

The pixel work is :mod:`lab.present.figures` (images, perturbations) and :mod:`lab.present.explanations`
(map colours and overlays); this module only enlarges.
"""

from __future__ import annotations

import numpy as np

from lab.data.pixels import to_float
from lab.present.explanations import overlay
from lab.present.figures import perturbation_image, to_uint8_image

#: the edge, in screen pixels, pictures are enlarged to (at least)
DISPLAY_PX = 196


def enlarge(img: np.ndarray, px: int = DISPLAY_PX) -> np.ndarray:
    """uint8 [H, W] or [H, W, 3] repeated by a whole factor so its longer edge reaches ``px``."""
    a = np.asarray(img)
    factor = max(1, int(np.ceil(px / max(a.shape[0], a.shape[1]))))
    if factor == 1:
        return a
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1)


def picture(image: np.ndarray, px: int = DISPLAY_PX) -> np.ndarray:
    """A float image [C, H, W] in [0, 1] (or uint8) ready for ``st.image``."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        a = to_float(a).numpy()
    return enlarge(to_uint8_image(a), px)


def perturbation_picture(delta: np.ndarray, scale: float, px: int = DISPLAY_PX) -> np.ndarray:
    """The perturbation [C, H, W] amplified (``0.5 + delta * scale``; mid-gray = unchanged)."""
    return picture(perturbation_image(delta, scale), px)


def overlay_picture(image: np.ndarray, amap: np.ndarray, signed: bool, px: int = DISPLAY_PX) -> np.ndarray:
    """An explanation map [H, W] coloured over the grayscale image [C, H, W] (lab.present.explanations)."""
    return enlarge(overlay(image, amap, signed), px)
