# SPDX-License-Identifier: Apache-2.0
"""Golden data for gkd::models: the GKD networks written in PyTorch from method.md §3, §4, §10 (the
official definitions' structure and state_dict names), then

- tests/golden/models_keys.txt: parameter count and every state_dict key with its shape, at width 1;
- tests/golden/models.txt: forward and backward checksums at reduced width. Every parameter, buffer and
  the input are set by a formula that gkd reproduces exactly (no weights are committed): for element i
  of tensor `name`, u = ((fnv1a32(name) + 7919 i) mod 2003) / 2003 - 0.5. The network runs in training
  mode with dropout off in float64 and in evaluation mode in float32; loss = sum(logits * G) with G from the same formula. Stored: logits and taps
  (sum, sum of squares, elements 0 and n/2), running statistics after the step, the input gradient and
  every parameter gradient (same checksums), and the eval-mode logits after the step.
"""
import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from make_golden import ROOT


def fnv1a(name):
    h = 0x811C9DC5
    for b in name.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def formula(name, shape):
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.int64)
    u = ((fnv1a(name) + 7919 * i) % 2003).to(torch.float64) / 2003 - 0.5
    return u.reshape(shape)


def value_for(name, shape):
    u = formula(name, shape)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "running_mean":
        return 0.1 * u
    if leaf == "running_var":
        return 1.0 + u
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.float64)
    if leaf == "gamma":
        return torch.zeros(shape, dtype=torch.float64)
    if len(shape) >= 2:
        fan_in = math.prod(shape) // shape[0]
        return u * (2.0 / math.sqrt(fan_in))
    if leaf == "weight":
        return 0.6 + 0.4 * u
    return 0.2 * u


def scaled(c, width):
    return max(1, int(c * width + 0.5))


# ---- building blocks ---------------------------------------------------------------------------------

def conv_bn(i, o, k=1, s=1, p=0, bias=False, act=None, eps=1e-5, d=1, g=1):
    layers = [nn.Conv2d(i, o, k, s, p, dilation=d, groups=g, bias=bias), nn.BatchNorm2d(o, eps=eps)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SKConv(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = conv_bn(c, c, 5, p=2, bias=True, act=nn.ReLU)
        self.conv2 = conv_bn(c, c, 3, p=1, bias=True, act=nn.ReLU)
        self.conv_se = conv_bn(c, c // 2, 1, bias=True, act=nn.ReLU)
        self.conv_ex1 = nn.Sequential(nn.Conv2d(c // 2, c, 1))
        self.conv_ex2 = nn.Sequential(nn.Conv2d(c // 2, c, 1))

    def forward(self, x):
        feats = torch.stack([self.conv1(x), self.conv2(x)], 1)
        z = self.conv_se(F.adaptive_avg_pool2d(feats.sum(1), 1))
        att = torch.softmax(torch.stack([self.conv_ex1(z), self.conv_ex2(z)], 1), 1)
        return (feats * att).sum(1)


class SKBlock(nn.Module):
    def __init__(self, i, planes, project):
        super().__init__()
        self.conv1 = conv_bn(i, planes, act=nn.ReLU)
        self.conv2 = nn.Sequential(SKConv(planes), nn.BatchNorm2d(planes), nn.ReLU())
        self.conv3 = conv_bn(planes, planes)
        self.downsample = conv_bn(i, planes) if project else None

    def forward(self, x):
        out = self.conv3(self.conv2(self.conv1(x)))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class SKDoubleConv(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.conv = nn.Sequential(SKBlock(i, o, True), SKBlock(o, o, False))

    def forward(self, x):
        return self.conv(x)


class StripPooling(nn.Module):
    def __init__(self, c, p1, p2, variant2=False):
        super().__init__()
        self.p1, self.p2, self.v2 = p1, p2, variant2
        half = c // 2 if variant2 else c
        self.conv1_1 = conv_bn(c, c, act=nn.ReLU)
        self.conv1_2 = conv_bn(c, c, act=nn.ReLU)
        self.conv2_0 = conv_bn(c, c, 3, p=1)
        self.conv2_1 = conv_bn(c, half, 3, p=1)
        self.conv2_2 = conv_bn(c, half, 3, p=1)
        self.conv2_3 = conv_bn(c, c, (1, 3), p=(0, 1))
        self.conv2_4 = conv_bn(c, c, (3, 1), p=(1, 0))
        self.conv2_5 = conv_bn(2 * c if variant2 else c, c, 3, p=1, act=nn.ReLU)
        self.conv2_6 = conv_bn(c, c, 3, p=1, act=nn.ReLU)
        self.conv3 = conv_bn(2 * c, c)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        h, w = x.shape[2:]
        up = lambda t: F.interpolate(t, (h, w))
        x1, x2 = self.conv1_1(x), self.conv1_2(x)
        a = self.conv2_0(x1)
        b = up(self.conv2_1(F.adaptive_avg_pool2d(x1, self.p1)))
        c = up(self.conv2_2(F.adaptive_avg_pool2d(x1, self.p2)))
        d = up(self.conv2_3(F.adaptive_avg_pool2d(x2, (1, w))))
        e = up(self.conv2_4(F.adaptive_avg_pool2d(x2, (h, 1))))
        y1 = self.conv2_5(F.relu(torch.cat([a, b, c], 1) if self.v2 else a + b + c))
        y2 = self.conv2_6(F.relu(e + d))
        if self.v2:
            y2 = x * y2
        return F.relu(x + self.conv3(torch.cat([y1, y2], 1)))


def head(i, o):
    return nn.Sequential(nn.Dropout2d(0.5), nn.Conv2d(i, o, 1))


class UnetSKA2(nn.Module):
    def __init__(self, width=1.0, classes=2):
        super().__init__()
        c1, c2, c3, c4 = (scaled(c, width) for c in (64, 128, 256, 512))
        self.conv1, self.conv2, self.conv3, self.conv4 = (SKDoubleConv(1, c1), SKDoubleConv(c1, c2),
                                                          SKDoubleConv(c2, c3), SKDoubleConv(c3, c4))
        self.up7 = nn.ConvTranspose2d(c4, c3, 2, 2)
        self.conv7 = SKDoubleConv(2 * c3, c3)
        self.up8 = nn.ConvTranspose2d(c3, c2, 2, 2)
        self.conv8 = SKDoubleConv(2 * c2, c2)
        self.up9 = nn.ConvTranspose2d(c2, c1, 2, 2)
        self.conv9 = SKDoubleConv(2 * c1, c1)
        self.conv10 = head(c1, classes)
        self.conv11 = head(c1, classes)
        self.pam1 = StripPooling(c3, 3, 6)
        self.pam2 = StripPooling(c2, 12, 18)
        self.pam3 = StripPooling(c1, 3, 6, variant2=True)

    def forward(self, x, bottleneck=None):
        c1 = self.conv1(x)
        c2 = self.conv2(F.max_pool2d(c1, 2))
        c3 = self.conv3(F.max_pool2d(c2, 2))
        c4 = self.conv4(F.max_pool2d(c3, 2))
        up7 = self.up7(c4 if bottleneck is None else bottleneck)
        c7 = self.pam1(self.conv7(torch.cat([up7, c3], 1)))
        c8 = self.pam2(self.conv8(torch.cat([self.up8(c7), c2], 1)))
        c9 = self.pam3(self.conv9(torch.cat([self.up9(c8), c1], 1)))
        return {"logits": self.conv10(c9), "c3": c3, "up7": up7, "c4": c4}


class LatentNet(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        c1, c2, c3, c4 = (scaled(c, width) for c in (64, 128, 256, 512))
        self.conv1, self.conv2, self.conv3, self.conv4 = (SKDoubleConv(1, c1), SKDoubleConv(c1, c2),
                                                          SKDoubleConv(c2, c3), SKDoubleConv(c3, c4))
        self.up7 = nn.ConvTranspose2d(c4, c3, 2, 2)
        self.up8 = nn.ConvTranspose2d(c3, c2, 2, 2)
        self.up9 = nn.ConvTranspose2d(c2, c1, 2, 2)
        self.conv10 = head(c1, 1)

    def forward(self, x):
        c4 = self.conv4(F.max_pool2d(self.conv3(F.max_pool2d(self.conv2(F.max_pool2d(self.conv1(x), 2)), 2)), 2))
        return {"logits": self.conv10(self.up9(self.up8(self.up7(c4)))), "c4": c4}


class InvertedResidual(nn.Module):
    def __init__(self, i, o, s, t):
        super().__init__()
        h = i * t
        layers = [] if t == 1 else [nn.Conv2d(i, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6()]
        layers += [nn.Conv2d(h, h, 3, s, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
                   nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o)]
        self.conv = nn.Sequential(*layers)
        self.residual = s == 1 and i == o

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, width):
        super().__init__()
        c = scaled(32, width)
        features = [conv_bn(1, c, 3, 2, 1, act=nn.ReLU6)]
        for t, ch, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                            (6, 160, 3, 2), (6, 320, 1, 1)]:
            for k in range(n):
                features.append(InvertedResidual(c, scaled(ch, width), s if k == 0 else 1, t))
                c = scaled(ch, width)
        features.append(conv_bn(c, scaled(1280, width), act=nn.ReLU6))
        self.features = nn.Sequential(*features)


class MobileNetV2UNet(nn.Module):
    def __init__(self, width=1.0, classes=2):
        super().__init__()
        c = lambda ch: scaled(ch, width)
        self.backbone = MobileNetV2(width)
        self.dconv1 = nn.ConvTranspose2d(c(1280), c(96), 4, padding=1, stride=2)
        self.invres1 = InvertedResidual(2 * c(96), c(96), 1, 6)
        self.dconv2 = nn.ConvTranspose2d(c(96), c(32), 4, padding=1, stride=2)
        self.invres2 = InvertedResidual(2 * c(32), c(32), 1, 6)
        self.dconv3 = nn.ConvTranspose2d(c(32), c(24), 4, padding=1, stride=2)
        self.invres3 = InvertedResidual(2 * c(24), c(24), 1, 6)
        self.dconv4 = nn.ConvTranspose2d(c(24), c(16), 4, padding=1, stride=2)
        self.invres4 = InvertedResidual(2 * c(16), c(16), 1, 6)
        self.conv_last = nn.Conv2d(c(16), 3, 1)
        self.conv_score = nn.Conv2d(3, classes, 1)

    def forward(self, x, bottleneck=None):
        f = self.backbone.features
        taps = []
        for n, layer in enumerate(f):
            x = layer(x)
            if n in (1, 3, 6, 13, 18):
                taps.append(x)
        x1, x2, x3, x4, x5 = taps
        up1 = self.invres1(torch.cat([x4, self.dconv1(x5 if bottleneck is None else bottleneck)], 1))
        up2 = self.invres2(torch.cat([x3, self.dconv2(up1)], 1))
        up3 = self.invres3(torch.cat([x2, self.dconv3(up2)], 1))
        up4 = self.invres4(torch.cat([x1, self.dconv4(up3)], 1))
        logits = F.interpolate(self.conv_score(self.conv_last(up4)), scale_factor=2, mode="bilinear",
                               align_corners=False)
        return {"logits": logits, "x5": x5, "up2": up2}


class ENetInitial(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.main_branch = nn.Conv2d(i, o - i, 3, 2, 1, bias=False)
        self.batch_norm = nn.BatchNorm2d(o)
        self.out_activation = nn.PReLU()

    def forward(self, x):
        return self.out_activation(self.batch_norm(torch.cat([self.main_branch(x), F.max_pool2d(x, 3, 2, 1)], 1)))


class ENetRegular(nn.Module):
    def __init__(self, c, act, k=3, p=1, d=1, asym=False, drop=0.0):
        super().__init__()
        m = c // 4
        self.ext_conv1 = conv_bn(m * 4 if False else c, m, act=act)
        if asym:
            self.ext_conv2 = nn.Sequential(nn.Conv2d(m, m, (k, 1), padding=(p, 0), dilation=d, bias=False),
                                           nn.BatchNorm2d(m), act(),
                                           nn.Conv2d(m, m, (1, k), padding=(0, p), dilation=d, bias=False),
                                           nn.BatchNorm2d(m), act())
        else:
            self.ext_conv2 = conv_bn(m, m, k, p=p, d=d, act=act)
        self.ext_conv3 = conv_bn(m, c, act=act)
        self.ext_regul = nn.Dropout2d(drop)
        self.out_activation = act()

    def forward(self, x):
        return self.out_activation(x + self.ext_regul(self.ext_conv3(self.ext_conv2(self.ext_conv1(x)))))


class ENetDown(nn.Module):
    def __init__(self, i, o, drop):
        super().__init__()
        m = i // 4
        self.ext_conv1 = conv_bn(i, m, 2, 2, act=nn.PReLU)
        self.ext_conv2 = conv_bn(m, m, 3, p=1, act=nn.PReLU)
        self.ext_conv3 = conv_bn(m, o, act=nn.PReLU)
        self.ext_regul = nn.Dropout2d(drop)
        self.out_activation = nn.PReLU()

    def forward(self, x):
        main, idx = F.max_pool2d(x, 2, 2, return_indices=True)
        e = self.ext_regul(self.ext_conv3(self.ext_conv2(self.ext_conv1(x))))
        n, c, h, w = e.shape
        main = torch.cat([main, torch.zeros(n, c - main.shape[1], h, w, dtype=x.dtype)], 1)
        return self.out_activation(main + e), idx


class ENetUp(nn.Module):
    def __init__(self, i, o, drop):
        super().__init__()
        m = i // 4
        self.main_conv1 = conv_bn(i, o)
        self.ext_conv1 = conv_bn(i, m, act=nn.ReLU)
        self.ext_tconv1 = nn.ConvTranspose2d(m, m, 2, 2, bias=False)
        self.ext_tconv1_bnorm = nn.BatchNorm2d(m)
        self.ext_tconv1_activation = nn.ReLU()
        self.ext_conv2 = conv_bn(m, o)
        self.ext_regul = nn.Dropout2d(drop)
        self.out_activation = nn.ReLU()

    def forward(self, x, idx, size):
        torch.use_deterministic_algorithms(False)  # a scatter to distinct positions: deterministic anyway
        main = F.max_unpool2d(self.main_conv1(x), idx, 2, output_size=size)
        torch.use_deterministic_algorithms(True)
        e = self.ext_tconv1_activation(self.ext_tconv1_bnorm(self.ext_tconv1(self.ext_conv1(x), output_size=size)))
        return self.out_activation(main + self.ext_regul(self.ext_conv2(e)))


class ENet(nn.Module):
    def __init__(self, width=1.0, classes=2):
        super().__init__()
        c16, c64, c128 = (scaled(c, width) for c in (16, 64, 128))
        P, R = nn.PReLU, nn.ReLU
        self.initial_block = ENetInitial(1, c16)
        self.downsample1_0 = ENetDown(c16, c64, 0.01)
        for k in range(1, 5):
            setattr(self, f"regular1_{k}", ENetRegular(c64, P, drop=0.01))
        self.downsample2_0 = ENetDown(c64, c128, 0.1)
        for stage in (2, 3):
            names = ["regular", "dilated", "asymmetric", "dilated", "regular", "dilated", "asymmetric", "dilated"]
            specs = [dict(), dict(d=2, p=2), dict(k=5, p=2, asym=True), dict(d=4, p=4), dict(), dict(d=8, p=8),
                     dict(k=5, p=2, asym=True), dict(d=16, p=16)]
            for j, (nm, sp) in enumerate(zip(names, specs)):
                idx = j + 1 if stage == 2 else j
                setattr(self, f"{nm}{stage}_{idx}", ENetRegular(c128, P, drop=0.1, **sp))
        self.upsample4_0 = ENetUp(c128, c64, 0.1)
        self.regular4_1 = ENetRegular(c64, R, drop=0.1)
        self.regular4_2 = ENetRegular(c64, R, drop=0.1)
        self.upsample5_0 = ENetUp(c64, c16, 0.1)
        self.regular5_1 = ENetRegular(c16, R, drop=0.1)
        self.transposed_conv = nn.ConvTranspose2d(c16, classes, 3, 2, 1, bias=False)

    def forward(self, x):
        size0 = x.shape
        x = self.initial_block(x)
        size1 = x.shape
        x, i1 = self.downsample1_0(x)
        for k in range(1, 5):
            x = getattr(self, f"regular1_{k}")(x)
        x1 = x
        size2 = x.shape
        x, i2 = self.downsample2_0(x)
        for name, m in self.named_children():
            if name[-3] in "23" and not name.startswith("downsample"):
                x = m(x)
        x = self.upsample4_0(x, i2, size2)
        x2 = self.regular4_2(self.regular4_1(x))
        x = self.regular5_1(self.upsample5_0(x2, i1, size1))
        return {"logits": self.transposed_conv(x, output_size=size0[2:]), "x1": x1, "x2": x2}


class ERFDown(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.conv = nn.Conv2d(i, o - i, 3, 2, 1)
        self.bn = nn.BatchNorm2d(o, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn(torch.cat([self.conv(x), F.max_pool2d(x, 2)], 1)))


class NonBottleneck1d(nn.Module):
    def __init__(self, c, p, d):
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(c, c, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(c, c, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(c, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(c, c, (3, 1), padding=(d, 0), dilation=(d, 1))
        self.conv1x3_2 = nn.Conv2d(c, c, (1, 3), padding=(0, d), dilation=(1, d))
        self.bn2 = nn.BatchNorm2d(c, eps=1e-3)
        self.dropout = nn.Dropout2d(p)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1x3_1(F.relu(self.conv3x1_1(x)))))
        h = self.bn2(self.conv1x3_2(F.relu(self.conv3x1_2(h))))
        return F.relu(self.dropout(h) + x)


class ERFUp(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.conv = nn.ConvTranspose2d(i, o, 3, 2, 1, output_padding=1)
        self.bn = nn.BatchNorm2d(o, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class ERFNet(nn.Module):
    def __init__(self, width=1.0, classes=2):
        super().__init__()
        c16, c64, c128 = (scaled(c, width) for c in (16, 64, 128))
        self.encoder = nn.Module()
        self.encoder.initial_block = ERFDown(1, c16)
        enc = [ERFDown(c16, c64)] + [NonBottleneck1d(c64, 0.1, 1) for _ in range(5)] + [ERFDown(c64, c128)]
        enc += [NonBottleneck1d(c128, 0.1, d) for _ in range(2) for d in (2, 4, 8, 16)]
        self.encoder.layers = nn.ModuleList(enc)
        self.encoder.output_conv = nn.Conv2d(c128, classes, 1)
        self.decoder = nn.Module()
        self.decoder.layers = nn.ModuleList([ERFUp(c128, c64), NonBottleneck1d(c64, 0, 1), NonBottleneck1d(c64, 0, 1),
                                             ERFUp(c64, c16), NonBottleneck1d(c16, 0, 1), NonBottleneck1d(c16, 0, 1)])
        self.decoder.output_conv = nn.ConvTranspose2d(c16, classes, 2, 2)

    def forward(self, x):
        x = self.encoder.initial_block(x)
        for n, layer in enumerate(self.encoder.layers):
            x = layer(x)
            if n == 0:
                f_enc = x
        for n, layer in enumerate(self.decoder.layers):
            x = layer(x)
            if n == 2:
                f_dec = x
        return {"logits": self.decoder.output_conv(x), "f_enc": f_enc, "f_dec": f_dec}


class UNetDoubleConv(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                                  nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())

    def forward(self, x):
        return self.conv(x)


class UNetUp(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.upsample = nn.ConvTranspose2d(i, o, 2, 2)
        self.conv = UNetDoubleConv(2 * o, o)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.upsample(x)], 1))


class UNet(nn.Module):
    def __init__(self, width=1.0, classes=2):
        super().__init__()
        c = [scaled(ch, width) for ch in (64, 128, 256, 512, 1024)]
        self.conv1, self.conv2, self.conv3, self.conv4, self.conv5 = (
            UNetDoubleConv(1, c[0]), UNetDoubleConv(c[0], c[1]), UNetDoubleConv(c[1], c[2]),
            UNetDoubleConv(c[2], c[3]), UNetDoubleConv(c[3], c[4]))
        self.up1, self.up2, self.up3, self.up4 = UNetUp(c[4], c[3]), UNetUp(c[3], c[2]), UNetUp(c[2], c[1]), UNetUp(c[1], c[0])
        self.conv14 = head(c[0], classes)

    def forward(self, x):
        c1 = self.conv1(x)
        c2 = self.conv2(F.max_pool2d(c1, 2))
        c3 = self.conv3(F.max_pool2d(c2, 2))
        c4 = self.conv4(F.max_pool2d(c3, 2))
        c5 = self.conv5(F.max_pool2d(c4, 2))
        c7 = self.up2(self.up1(c5, c4), c3)
        return {"logits": self.conv14(self.up4(self.up3(c7, c2), c1)), "c4": c4, "c7": c7}


class VectorBottleneck(nn.Module):
    def __init__(self, spatial=256, hidden=64):
        super().__init__()
        self.downfc1, self.downfc2 = nn.Linear(spatial, hidden), nn.Linear(hidden, 1)
        self.upfc1, self.upfc2 = nn.Linear(1, hidden), nn.Linear(hidden, spatial)

    def encode(self, x):
        return self.downfc2(F.gelu(self.downfc1(x)))

    def decode(self, z):
        return self.upfc2(F.gelu(self.upfc1(z)))


class TeacherAlignment(nn.Module):
    """TAN: z_T from c4, header back to c4's shape + BN (method.md §4.3)."""

    def __init__(self, channels, h, w, hidden=64):
        super().__init__()
        self.shape = (channels, h, w)
        self.MLPheader = VectorBottleneck(h * w, hidden)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, c4):
        z = self.MLPheader.encode(c4.flatten(2))
        return {"logits": self.norm(self.MLPheader.decode(z).reshape(c4.shape[0], *self.shape)), "z": z}


class StudentAlignment(nn.Module):
    """SAN [INFER]: 1x1 projection to the latent channels, vector bottleneck, 1x1 expansion (method.md §4.3)."""

    def __init__(self, channels, latent, h, w, hidden=64):
        super().__init__()
        self.shape = (latent, h, w)
        self.proj = conv_bn(channels, latent, bias=True, act=nn.ReLU)
        self.MLPheader = VectorBottleneck(h * w, hidden)
        self.expand = conv_bn(latent, channels, bias=True)

    def forward(self, x5):
        z = self.MLPheader.encode(self.proj(x5).flatten(2))
        return {"logits": self.expand(self.MLPheader.decode(z).reshape(x5.shape[0], *self.shape)), "z": z}


# ---- golden generation ------------------------------------------------------------------------------

# name: (constructor at width 1, reduced constructor, input shape, taps). Inputs are set by formula.
def cases():
    return [
        ("unet_ska2", lambda: UnetSKA2(1.0), lambda: UnetSKA2(1 / 16), (2, 1, 32, 32), ["c3", "up7", "c4"]),
        ("mobilenet_v2_unet", lambda: MobileNetV2UNet(1.0), lambda: MobileNetV2UNet(1 / 8), (2, 1, 64, 64), ["x5", "up2"]),
        ("enet", lambda: ENet(1.0), lambda: ENet(1 / 4), (2, 1, 64, 64), ["x1", "x2"]),
        ("erfnet", lambda: ERFNet(1.0), lambda: ERFNet(1 / 4), (2, 1, 64, 64), ["f_enc", "f_dec"]),
        ("unet", lambda: UNet(1.0), lambda: UNet(1 / 16), (2, 1, 32, 32), ["c4", "c7"]),
        ("latent_net", lambda: LatentNet(1.0), lambda: LatentNet(1 / 16), (2, 1, 32, 32), ["c4"]),
        ("teacher_alignment", lambda: TeacherAlignment(512, 16, 16), lambda: TeacherAlignment(32, 4, 4), (2, 32, 4, 4), ["z"]),
        ("student_alignment", lambda: StudentAlignment(1280, 512, 4, 4), lambda: StudentAlignment(160, 32, 2, 2), (2, 160, 2, 2), ["z"]),
    ]


def checksum(t):
    t = t.detach().to(torch.float64).reshape(-1)
    n = t.numel()
    picks = [0, n // 2]
    return torch.cat([torch.stack([t.sum(), (t * t).sum()]), t[picks]])


def set_by_formula(model, dtype):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            t.copy_(value_for(name, tuple(t.shape)).to(t.dtype))


def run(w, name, make, shape, taps, dtype, swap=False):
    torch.manual_seed(0)
    model = make().to(dtype)
    set_by_formula(model, dtype)
    # float64: training mode (batch statistics) with dropout off. float32: evaluation mode, where the
    # network is well conditioned in single precision (training-mode batch norm over two values, as in
    # SKConv's squeeze path at batch 2, amplifies float32 rounding to ~1e-3 in PyTorch itself).
    model.train(dtype == torch.float64)
    for m in model.modules():
        if isinstance(m, (nn.Dropout, nn.Dropout2d)):
            m.eval()
    tag = f"{name}{'.swap' if swap else ''}.{'float64' if dtype == torch.float64 else 'float32'}"
    x = (4 * formula("input", shape)).to(dtype).requires_grad_(True)
    if swap:
        # DICD: the decoder runs from a supplied bottleneck with the real skips.
        saved = copy.deepcopy(model.state_dict())  # the shape probe must not move the running statistics
        with torch.no_grad():
            ref = model(x)[ref_keys(model)[0]]
        model.load_state_dict(saved)
        swapped = formula("bottleneck", tuple(ref.shape)).to(dtype).requires_grad_(True)
        out = model(x, swapped)
    else:
        out = model(x)
    g = formula("gout", tuple(out["logits"].shape)).to(dtype)
    (out["logits"] * g).sum().backward()
    w.tensor(f"{tag}.logits", checksum(out["logits"]))
    for k in taps:
        w.tensor(f"{tag}.{k}", checksum(out[k]))
    w.tensor(f"{tag}.input_grad", checksum(x.grad))
    if swap:
        w.tensor(f"{tag}.bottleneck_grad", checksum(swapped.grad))
    for pname, p in model.named_parameters():
        if p.grad is not None:
            w.tensor(f"{tag}.grad.{pname}", checksum(p.grad))
    for bname, b in model.named_buffers():
        if bname.endswith("running_mean") or bname.endswith("running_var"):
            w.tensor(f"{tag}.buffer.{bname}", checksum(b))
    if not swap and dtype == torch.float64:
        model.eval()
        with torch.no_grad():
            w.tensor(f"{tag}.eval_logits", checksum(model(x.detach())["logits"]))


def ref_keys(model):
    return ["x5"] if isinstance(model, MobileNetV2UNet) else ["c4"]


def export_enet(w):
    """A PyTorch-initialised ENet (width 1/4; running statistics moved by two training-mode passes),
    exported with safetensors' own writer (int64 num_batches_tracked included), and its eval-mode
    logits: gkd loads the file strictly into its ENet and must reproduce them."""
    from safetensors.torch import save_file
    torch.manual_seed(1234)
    model = ENet(1 / 4)
    x = 4 * formula("input", (2, 1, 64, 64)).to(torch.float32)
    model.train()
    with torch.no_grad():
        model(x)
        model(x * 0.5)
    model.eval()
    with torch.no_grad():
        w.tensor("enet_export.float32.eval_logits", checksum(model(x)["logits"]))
    path = ROOT / "tests" / "golden" / "models_enet.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def generate(w):
    lines = ["# tests/golden/models_keys.txt: generated by tools/make_golden.py from tools/golden/models.py; do not edit",
             "# net <name> <parameter count>, then key <state_dict key> <shape...> at width 1"]
    for name, make_full, make_small, shape, taps in cases():
        full = make_full()
        count = sum(p.numel() for p in full.parameters())
        lines.append(f"net {name} {count}")
        for k, t in full.state_dict().items():
            lines.append(f"key {k} " + " ".join(str(s) for s in t.shape))
        for dtype in (torch.float64, torch.float32):
            run(w, name, make_small, shape, taps, dtype)
    for dtype in (torch.float64, torch.float32):
        run(w, "mobilenet_v2_unet", lambda: MobileNetV2UNet(1 / 8), (2, 1, 64, 64), [], dtype, swap=True)
        run(w, "unet_ska2", lambda: UnetSKA2(1 / 16), (2, 1, 32, 32), [], dtype, swap=True)
    export_enet(w)
    path = ROOT / "tests" / "golden" / "models_keys.txt"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")
