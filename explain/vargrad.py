"""VarGrad: the variance of a base attribution (default: the signed gradient) over noisy inputs.

Adebayo, Gilmer, Goodfellow & Kim (2018), "Local Explanation Methods for Deep Neural
Networks Lack Sensitivity to Parameter Values". Backed by ``captum.attr.NoiseTunnel``
(``nt_type="vargrad"``); settings as in :mod:`explain.smoothgrad`.
"""

from __future__ import annotations

from explain.base import EXPLAINERS
from explain.smoothgrad import NoiseTunnelExplainer


@EXPLAINERS.register("vargrad")
class VarGradExplainer(NoiseTunnelExplainer):
    """Per-pixel variance of the base attribution over noisy inputs (non-negative)."""

    paper = "Adebayo et al., 2018, Local Explanation Methods for Deep Neural Networks Lack Sensitivity"
    nt_type = "vargrad"
    default_base = "gradient"
