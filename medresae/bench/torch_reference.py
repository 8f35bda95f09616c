"""The ResUNet written in plain PyTorch: the reference `medresae bench speed` compares with.

Same layers, shapes and parameter count as `medresae.models.ResUNet` with
its defaults ('basic' blocks, batch norm, ReLU, strided-conv down-sampling,
transposed-conv up-sampling, additive skips, residual head), so the ratio
to this network measures the cost of Keras and of the backend, not of a
different architecture. Imported only by the speed benchmark (torch is
always installed with medresae's MONAI dependency).
"""

import torch
from torch import nn


def _tuple(value, n):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


def _same_padding(kernel):
    # Odd kernels only ('same' padding with stride 1), as ResUNet uses.
    return tuple(k // 2 for k in kernel)


class _ConvNormAct(nn.Sequential):
    def __init__(self, cin, cout, kernel, stride, transpose=False):
        if transpose:
            conv = nn.ConvTranspose3d(cin, cout, kernel, stride=stride)
        elif stride == (1, 1, 1):
            conv = nn.Conv3d(cin, cout, kernel, padding=_same_padding(kernel))
        else:
            conv = nn.Conv3d(cin, cout, kernel, stride=stride)  # kernel == stride: no padding needed
        super().__init__(conv, nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01), nn.ReLU(inplace=True))


class _BasicBlock(nn.Module):
    def __init__(self, cin, cout, kernel):
        super().__init__()
        pad = _same_padding(kernel)
        self.branch = nn.Sequential(
            nn.Conv3d(cin, cout, kernel, padding=pad), nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01),
            nn.ReLU(inplace=True),
            nn.Conv3d(cout, cout, kernel, padding=pad), nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01),
        )
        self.shortcut = None
        if cin != cout:
            self.shortcut = nn.Sequential(nn.Conv3d(cin, cout, 1), nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01))

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(self.branch(x) + skip)


class TorchResUNet(nn.Module):
    """A 3D ResUNet in plain PyTorch (channels-first input `(N, C, X, Y, Z)`).

    Args:
        in_channels: input (and output) channels.
        filters: filters per level.
        n_blocks: basic residual blocks per level.
        strides: per-axis down-sampling between levels (one tuple for all).
        kernel_size: kernel of the residual blocks (odd).

    Examples:
        >>> net = TorchResUNet(filters=(16, 32), n_blocks=1, strides=(2, 2, 1))
        >>> net(torch.zeros(1, 1, 32, 32, 8)).shape
        torch.Size([1, 1, 32, 32, 8])
    """

    def __init__(self, in_channels=1, filters=(32, 64, 128), n_blocks=2, strides=2, kernel_size=3):
        super().__init__()
        kernel = _tuple(kernel_size, 3)
        stride = _tuple(strides, 3)
        self.stem = _ConvNormAct(in_channels, filters[0], kernel, (1, 1, 1))
        self.down = nn.ModuleList()
        self.encoder = nn.ModuleList()
        for level, width in enumerate(filters):
            if level:
                self.down.append(_ConvNormAct(filters[level - 1], width, stride, stride))
            blocks = [_BasicBlock(width, width, kernel) for _ in range(n_blocks)]
            self.encoder.append(nn.Sequential(*blocks))
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in range(len(filters) - 2, -1, -1):
            self.up.append(_ConvNormAct(filters[level + 1], filters[level], stride, stride, transpose=True))
            self.decoder.append(nn.Sequential(*[_BasicBlock(filters[level], filters[level], kernel)
                                                for _ in range(n_blocks)]))
        self.head = nn.Conv3d(filters[0], in_channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, image):
        x = self.stem(image)
        skips = []
        for level, blocks in enumerate(self.encoder):
            if level:
                x = self.down[level - 1](x)
            x = blocks(x)
            skips.append(x)
        for i, (up, blocks) in enumerate(zip(self.up, self.decoder)):
            x = blocks(up(x) + skips[len(skips) - 2 - i])
        return image - self.head(x)
