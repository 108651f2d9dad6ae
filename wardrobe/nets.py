"""Network definitions the torch runtime and the training script share."""

from __future__ import annotations

from torch import nn

from wardrobe.errors import ModelError


class AlexNetSlim(nn.Module):
    """AlexNet's five convolutions with batch norm, global average pooling and one small linear layer.

    The original's 58 M fully connected weights are what make AlexNet large; pooling instead keeps
    the same feature extractor at 2.5 M parameters (10 MB fp32, under 3 MB int8).
    """

    def __init__(self, num_classes: int, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.BatchNorm2d(192), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.BatchNorm2d(384), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.BatchNorm2d(256), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.BatchNorm2d(256), nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


def build(arch: str, num_classes: int) -> nn.Module:
    """An untrained network of the named architecture with num_classes outputs."""
    if arch == "alexnet-slim":
        return AlexNetSlim(num_classes)
    if arch in ("alexnet", "resnet18"):
        try:
            import torchvision
        except ImportError as e:  # a missing or broken torchvision (ImportError or its own ops error)
            raise ImportError(f"{arch} needs torchvision: pip install torchvision ({e})") from e
    if arch == "alexnet":
        m = torchvision.models.alexnet(weights=None)
        m.classifier[6] = nn.Linear(4096, num_classes)
        return m
    if arch == "resnet18":
        m = torchvision.models.resnet18(weights=None)
        m.fc = nn.Linear(512, num_classes)
        return m
    if arch in LITE:
        return LiteNet(arch, num_classes)
    raise ModelError(f"unknown architecture {arch!r}")


LITE = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
"""EfficientNet-Lite variants and the input side each was trained at on ImageNet."""
LITE_MEAN, LITE_STD = (0.498, 0.498, 0.498), (0.502, 0.502, 0.502)
"""EfficientNet-Lite's input normalisation (pixels to about -1..1), as its ImageNet training used."""


class LiteNet(nn.Module):
    """EfficientNet-Lite (ReLU6, no squeeze-excite: quantizes well) with num_classes outputs.

    The network is cut in two at a block index: `prefix` (stem and the first `cut` blocks, frozen and
    cached during training) and `suffix` (the remaining blocks, the head convolution and the linear layer).
    """

    def __init__(self, arch: str, num_classes: int) -> None:
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise ImportError("EfficientNet-Lite needs the train extra: in the wardrobe source folder, pip install '.[train]'") from e
        self.net = EfficientNet.from_name(arch, num_classes=num_classes)

    def prefix(self, x, cut: int):
        """Stem and blocks [0, cut)."""
        n = self.net
        x = n._swish(n._bn0(n._conv_stem(x)))
        for block in n._blocks[:cut]:
            x = block(x)
        return x

    def pooled(self, f, cut: int):
        """Blocks [cut, end), head convolution and global average pooling: the 1280-wide embedding."""
        n = self.net
        for block in n._blocks[cut:]:
            f = block(f)
        return n._swish(n._bn1(n._conv_head(f))).mean((2, 3))

    def suffix(self, f, cut: int):
        """From block cut's input to the logits."""
        n = self.net
        return n._fc(n._dropout(self.pooled(f, cut)))

    def forward(self, x):
        return self.suffix(self.prefix(x, 0), 0)
