"""PreAct ResNet-18 (He et al., 2016, "Identity Mappings in Deep Residual Networks"), the
CIFAR-10 (32x32 RGB) network of the adversarial-training literature (Rice et al. 2020,
Wong et al. 2020). ReLUs are separate, non-in-place modules so attribution hooks work."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lab.models.registry import MODELS, Net


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.relu2(self.bn2(out)))
        return out + shortcut


@MODELS.register("preact_resnet18")
class PreActResNet18(Net):
    default_layer = "relu"  # the rectified output of the last stage (after its BN and ReLU)

    def __init__(self, in_channels: int, num_classes: int, hw: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        layers: list[nn.Module] = []
        in_planes = 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            for s in (stride, 1):
                layers.append(PreActBlock(in_planes, planes, s))
                in_planes = planes
        self.layer1 = nn.Sequential(*layers[0:2])
        self.layer2 = nn.Sequential(*layers[2:4])
        self.layer3 = nn.Sequential(*layers[4:6])
        self.layer4 = nn.Sequential(*layers[6:8])
        self.bn = nn.BatchNorm2d(512)
        self.relu = nn.ReLU()
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = self.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)
