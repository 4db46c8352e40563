"""``Denoised(classifier, denoiser)``: a denoiser in front of a frozen classifier, itself a
model (same [0, 1] input contract, logits out), so attacks, explainers, the evaluator and
the dashboard take it unchanged.

Also the *views* of a defended model the evaluator attacks (the rows of its report; see
:func:`threat_rows`): the bare classifier (gray-box), the whole pipeline as autograd sees
it (white-box), the pipeline with BPDA's identity backward through non-differentiable
transforms, and the expectation over a randomized transform (EOT). Each view is a model
the attacks run on; the defended model itself always judges the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from defenses.denoisers.base import Denoiser
from lab.models.base import LabModel, ModelInfo

#: default EOT sample count (Athalye et al. use 30 on ImageNet; 10 is plenty on MNIST)
EOT_SAMPLES = 10


class Denoised(LabModel):
    """``forward(x) = classifier(denoiser(x))``; the classifier stays frozen in eval mode.

    ``x``: [B, C, H, W] in [0, 1]. ``info`` describes the pipeline (``arch`` is
    ``"<denoiser>+<classifier arch>"``; ``info.extra`` names both parts).
    """

    def __init__(self, classifier: LabModel, denoiser: Denoiser, info: ModelInfo) -> None:
        nn.Module.__init__(self)
        self.info = info
        self.classifier = classifier
        self.denoiser = denoiser
        for p in classifier.parameters():
            p.requires_grad_(False)
        classifier.eval()

    # the classifier owns the normalization
    @property
    def mean(self) -> torch.Tensor:  # type: ignore[override]
        return self.classifier.mean

    @property
    def std(self) -> torch.Tensor:  # type: ignore[override]
        return self.classifier.std

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.normalize(x)

    def train(self, mode: bool = True) -> Denoised:
        """Train mode reaches the denoiser only; the frozen classifier stays in eval mode."""
        super().train(mode)
        self.classifier.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.denoiser(x))

    @torch.no_grad()
    def denoise(self, x: torch.Tensor) -> torch.Tensor:
        """The images the classifier sees [B, C, H, W] in [0, 1] (no gradient; for display)."""
        return self.denoiser(x)

    @torch.no_grad()
    def detector_score(self, x: torch.Tensor) -> torch.Tensor:
        """A per-image suspicion score [B]: the denoiser's own (MagNet's reconstruction
        error) where it has one, else feature squeezing's (Xu et al. 2018): the L1 distance
        between the classifier's softmax on ``x`` and on the denoised ``x``."""
        own = self.denoiser.detector_score(x)
        if own is not None:
            return own.float()
        p = self.classifier(x).float().softmax(1)
        q = self.classifier(self.denoiser(x)).float().softmax(1)
        return (p - q).abs().sum(1)

    @property
    def has_attention(self) -> bool:
        return self.classifier.has_attention

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.classifier.forward_with_attention(self.denoiser(x))

    def extra_repr(self) -> str:
        return f"denoiser={self.denoiser.name}, classifier={self.classifier.info.arch}"


class _View(nn.Module):
    """A model the evaluator attacks in place of the defended model (metadata passes through)."""

    def __init__(self, model: Denoised) -> None:
        super().__init__()
        self.model = model
        self.info = model.info


class BPDAView(_View):
    """The pipeline with the identity in place of the backward pass of its non-differentiable
    transform (BPDA, Athalye, Carlini & Wagner 2018); the forward pass is unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.classifier(self.model.denoiser.transform(x, "identity"))


class EOTView(_View):
    """The pipeline's logits averaged over ``samples`` draws of its randomness (EOT, Athalye
    et al. 2018): the gradient of the average is the average gradient. The draws run as
    one batch of ``samples * B`` images."""

    def __init__(self, model: Denoised, samples: int = EOT_SAMPLES, bpda: bool = False) -> None:
        super().__init__(model)
        self.samples = int(samples)
        self.bpda = bpda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xs = x.repeat(self.samples, 1, 1, 1)
        z = self.model.denoiser.transform(xs, "identity" if self.bpda else "zero")
        return self.model.classifier(z).view(self.samples, b, -1).mean(0)


@dataclass
class ThreatRow:
    """One row of a defended model's evaluation: who the attacks see, and what it means."""

    name: str  # gray-box | white-box | bpda | eot
    attacked: nn.Module  # the model the attacks compute gradients / queries on
    description: str
    #: a transfer row: the attacked model is a surrogate (not the judged model), so every
    #: attack runs at full strength (its ``transfer_settings``: no early stop, high confidence)
    transfer: bool = False


def threat_rows(model: nn.Module, eot_samples: int = EOT_SAMPLES) -> list[ThreatRow]:
    """The rows a model's evaluation needs: one (white-box) for a plain model; for a
    :class:`Denoised` model gray-box and white-box, plus BPDA for a non-differentiable
    transform and EOT for a randomized one."""
    if not isinstance(model, Denoised):
        return [ThreatRow("white-box", model, "attacks on the model")]
    d = model.denoiser
    rows = [
        ThreatRow("gray-box", model.classifier,
                  "adversarial examples made on the bare classifier, then denoised (the attacker ignores the defense); "
                  "a transfer row: every attack runs its full budget with no early stop, the margin loss pushed to "
                  "a confidence of 20 logits past the boundary", transfer=True),
        ThreatRow("white-box", model,
                  "attacks through the whole pipeline, with the gradients autograd gives"
                  + ("" if d.differentiable else " (zero through the non-differentiable transform)")),
    ]  # fmt: skip
    if not d.differentiable:
        rows.append(ThreatRow("bpda", BPDAView(model),
                              "BPDA: the identity in the backward pass of the non-differentiable transform"))  # fmt: skip
    if d.randomized:
        rows.append(ThreatRow("eot", EOTView(model, eot_samples, bpda=not d.differentiable),
                              f"EOT: gradients averaged over {eot_samples} draws of the transform's randomness"))  # fmt: skip
    return rows
