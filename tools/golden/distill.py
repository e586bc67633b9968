# SPDX-License-Identifier: Apache-2.0
"""Golden data for the GKD pipeline's composite losses (include/gkd/distill/): the ACT terms
(act.hpp), the DCGD graph terms (dcgd.hpp), the DICD loss (dicd.hpp) and the baselines' terms
(baselines.hpp), composed in PyTorch from the networks of golden/models.py and the reference losses of
golden/graph_kd.py, pairwise_kd.py and kd_baselines.py, exactly as the headers document them.

Every parameter, buffer and input is set by the formula of golden/models.py (`value_for` for network
state, `formula` for inputs), so nothing but results is stored. The networks are the tiny ones of
tests/distill/test_losses.cpp: patch 32, teacher width 1/32, student width 0.05, MSAN hidden 4, all in
evaluation mode (dropout off, running statistics), float64. With the formula's running statistics the
frozen networks are degenerate in evaluation mode at these widths (the teacher's conv2 output is all
zero, so c4 does not depend on the image and the cross terms vanish); so the teacher, the student and
the P-SAE are calibrated first: one training-mode pass with BatchNorm momentum 1 (running statistics =
that batch's mean and unbiased variance) on the images (the P-SAE too: calibrated on the binary masks,
channels that are constant on them get a near-zero variance that amplifies rounding ~1e4 times). TAN and
SAN keep the formula's statistics.

Stored per case: each term's (weighted) value and its gradient w.r.t. the trainable side, in full for
tensors of at most 64 elements, else as the checksum of golden/models.py [sum, sum of squares, x[0],
x[n/2]]. A gradient that PyTorch leaves undefined (the term does not reach that tensor) is not stored.
Float32 (DCGD, baselines): the reference is float64 arithmetic on the float32-rounded inputs, the exact
answer the float32 computation approximates. (`act` and `dicd_case` can do the same for the networks,
but `generate` runs them in float64 only; see there.)
"""
import torch
import torch.nn.functional as F

from golden.graph_kd import graph_loss
from golden.kd_baselines import attention_transfer, cwd, ifvd, rad
from golden.models import (LatentNet, MobileNetV2UNet, StudentAlignment, TeacherAlignment, UnetSKA2, checksum,
                           formula, scaled, set_by_formula)
from golden.pairwise_kd import dicd, skd

PATCH, TEACHER_WIDTH, STUDENT_WIDTH, HIDDEN = 32, 1 / 32, 0.05, 4


def store(w, key, t):
    """The full tensor when small, else its checksum (under <key>.checksum)."""
    t = t.detach().to(torch.float64)
    if t.numel() <= 64:
        w.tensor(key, t)
    else:
        w.tensor(f"{key}.checksum", checksum(t))


def tag(dtype):
    return "float64" if dtype == torch.float64 else "float32"


def distillation_kl(s, t, tau):
    """gkd::distillation_kl: τ² · KL(softmax(t/τ) ‖ softmax(s/τ)) over dim 1, mean over the other positions."""
    per_pos = F.kl_div(F.log_softmax(s / tau, 1), F.log_softmax(t / tau, 1), reduction="none", log_target=True).sum(1)
    return per_pos.mean() * tau * tau


# ---- the tiny networks and the encode/decode split of the gkd models ---------------------------------

def tiny_networks(dtype=torch.float64):
    """The networks set by formula in `dtype` (rounding the values), then computed in float64."""
    c_t = scaled(512, TEACHER_WIDTH)
    nets = {
        "teacher": UnetSKA2(TEACHER_WIDTH),
        "student": MobileNetV2UNet(STUDENT_WIDTH),
        "psae": LatentNet(TEACHER_WIDTH),
        "tan": TeacherAlignment(c_t, PATCH // 8, PATCH // 8, HIDDEN),
        "san": StudentAlignment(scaled(1280, STUDENT_WIDTH), c_t, PATCH // 32, PATCH // 32, HIDDEN),
    }
    for m in nets.values():
        m.to(dtype)
        set_by_formula(m, dtype)
        m.to(torch.float64)
        m.eval()
    images, _ = images_and_masks(dtype)
    for name in ("teacher", "student", "psae"):
        calibrate(nets[name], images)
        nets[name].requires_grad_(False)
    return nets


def calibrate(model, x):
    """Running statistics := the batch statistics of one training-mode pass on x (dropout off)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    for m in model.modules():
        if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)):
            m.eval()
    with torch.no_grad():
        model(x)
    model.eval()


def student_skips(student, x):
    """MobileNetV2UNet.encode: the taps x1..x5 of the backbone."""
    taps = []
    for n, layer in enumerate(student.backbone.features):
        x = layer(x)
        if n in (1, 3, 6, 13, 18):
            taps.append(x)
    return taps


def student_decode(student, bottleneck, skips):
    """MobileNetV2UNet.decode(bottleneck, skips): the decoder with the skips x1..x4."""
    x1, x2, x3, x4 = skips[:4]
    up1 = student.invres1(torch.cat([x4, student.dconv1(bottleneck)], 1))
    up2 = student.invres2(torch.cat([x3, student.dconv2(up1)], 1))
    up3 = student.invres3(torch.cat([x2, student.dconv3(up2)], 1))
    up4 = student.invres4(torch.cat([x1, student.dconv4(up3)], 1))
    return F.interpolate(student.conv_score(student.conv_last(up4)), scale_factor=2, mode="bilinear", align_corners=False)


def psae_decode(psae, c4):
    return psae.conv10(psae.up9(psae.up8(psae.up7(c4))))


def tan_header(tan, z):
    return tan.norm(tan.MLPheader.decode(z).reshape(z.shape[0], *tan.shape))


def san_encode(san, x5):
    return san.MLPheader.encode(san.proj(x5).flatten(2))


def san_header(san, z):
    return san.expand(san.MLPheader.decode(z).reshape(z.shape[0], *san.shape))


def images_and_masks(dtype=torch.float64):
    images = (4 * formula("distill.images", (2, 1, PATCH, PATCH))).to(dtype).to(torch.float64)
    masks = (formula("distill.masks", (2, PATCH, PATCH)) > 0.3).to(torch.float64)  # 20% foreground
    return images, masks


def trainable(w, tag, term, value, params):
    """Stores a term's value and its gradients w.r.t. the named parameters that it reaches."""
    w.tensor(f"{tag}.{term}.value", value.detach())
    names = list(params)
    grads = torch.autograd.grad(value, [params[n] for n in names], retain_graph=True, allow_unused=True)
    for n, g in zip(names, grads):
        if g is not None:
            store(w, f"{tag}.{term}.grad.{n}", g)


# ---- ACT -------------------------------------------------------------------------------------------

def act(w, dtype):
    """act_losses with every weight 1 and cross τ = 2: rec, sem_rec, sem_pull, align, cross."""
    n = tiny_networks(dtype)
    teacher, student, psae, tan, san = n["teacher"], n["student"], n["psae"], n["tan"], n["san"]
    images, masks = images_and_masks(dtype)
    y = masks.unsqueeze(1)
    tau = 2.0
    with torch.no_grad():
        c4 = teacher(images)["c4"]
        teacher_logits = teacher(images)["logits"]
        x5 = student(images)["x5"]
        student_logits = student(images)["logits"]
        psae_middle = psae(y)["c4"]
    z_t = tan.MLPheader.encode(c4.flatten(2))
    z_s = san_encode(san, x5)
    z_p = tan.MLPheader.encode(psae_middle.flatten(2))
    terms = {
        "rec": F.mse_loss(tan_header(tan, z_t), c4) + F.mse_loss(san_header(san, z_s), x5),
        "sem_rec": F.binary_cross_entropy_with_logits(
            psae_decode(psae, tan.MLPheader.decode(z_p).reshape(psae_middle.shape)), y),
        "sem_pull": F.mse_loss(z_t, z_p) + F.mse_loss(z_s, z_p),
        "align": F.mse_loss(z_t, z_s),
        "cross": distillation_kl(teacher(images, tan_header(tan, z_s))["logits"], teacher_logits, tau)
        + distillation_kl(student(images, san_header(san, z_t))["logits"], student_logits, tau),
    }
    params = {f"tan.{k}": p for k, p in tan.named_parameters()}
    params.update({f"san.{k}": p for k, p in san.named_parameters()})
    for term, value in terms.items():
        trainable(w, f"act.{tag(dtype)}", term, value, params)


# ---- DCGD ------------------------------------------------------------------------------------------

def sample_major(per_view):
    s = torch.stack(per_view, 1)
    return s.reshape(s.shape[0] * s.shape[1], s.shape[2])


def dcgd(w):
    """add_dcgd_terms for B = 3 samples, K = 2 views, C = 6, graph τ = 0.5, both forms."""
    batch, views, channels, tau = 3, 2, 6, 0.5
    for dtype in (torch.float64, torch.float32):
        tag = f"dcgd.{'float64' if dtype == torch.float64 else 'float32'}"
        rounded = lambda t: t.to(dtype).to(torch.float64)
        for form in ("kl", "infonce"):
            nce = form == "infonce"
            s = [rounded(2 * formula(f"distill.dcgd.student{v}", (batch, channels))).requires_grad_(True)
                 for v in range(1 + views)]
            t = [rounded(2 * formula(f"distill.dcgd.teacher{v}", (batch, channels))) for v in range(1 + views)]
            terms = {"intra": graph_loss(sample_major(s), sample_major(t), tau, "star", 1 + views, "mean", nce),
                     "inter": graph_loss(sample_major(s[1:]), sample_major(t[1:]), tau, "full", 0, "mean", nce)}
            for term, value in terms.items():
                trainable(w, f"{tag}.{form}", term, value, {f"student{v}": x for v, x in enumerate(s)})


# ---- DICD ------------------------------------------------------------------------------------------

def dicd_case(w, dtype):
    """dicd_loss with τ = 2: gradients w.r.t. the student skips x1..x5."""
    n = tiny_networks(dtype)
    teacher, student, tan, san = n["teacher"], n["student"], n["tan"], n["san"]
    images, _ = images_and_masks(dtype)
    tau = 2.0
    with torch.no_grad():
        out = teacher(images)
        c4, teacher_logits = out["c4"], out["logits"]
        z_t = tan.MLPheader.encode(c4.flatten(2))
        skips = [x.clone() for x in student_skips(student, images)]
    for x in skips:
        x.requires_grad_(True)
    s_to_t = teacher(images, tan_header(tan, san_encode(san, skips[4])))["logits"]
    t_to_s = student_decode(student, san_header(san, z_t), skips)
    value = dicd(teacher_logits, s_to_t, t_to_s, tau)
    trainable(w, f"dicd.{tag(dtype)}", "dicd", value, {f"x{k + 1}": x for k, x in enumerate(skips)})


# ---- baselines -------------------------------------------------------------------------------------

# BaselineConfig's defaults
KD_TAU, KD_WEIGHT, AT_WEIGHT, AT_P = 4.0, 1.0, 1.0e3, 2.0
SKD_PIXEL, SKD_PAIR, IFVD_WEIGHT, CWD_TAU, CWD_WEIGHT = 1.0, 1.0, 1.0, 4.0, 1.0
EMKD_PMD, EMKD_IMD, EMKD_RAD = 0.1, 0.9, 0.9

# student (logits, mid, bottleneck) shapes, teacher's, and the mask shape, as in test_losses.cpp's
# baseline case at half the logit side
STUDENT_SHAPES = [(2, 2, 8, 8), (2, 3, 4, 4), (2, 4, 2, 2)]
TEACHER_SHAPES = [(2, 2, 8, 8), (2, 6, 8, 8), (2, 5, 4, 4)]
SCALES = [3.0, 2.0, 2.0]


def baseline_masks():
    # rows of 0/1 runs; every sample has both regions at every feature size (RAD needs a background)
    return (formula("distill.baseline.masks", (2, 8, 8)) > 0).to(torch.float64)


def baseline_terms(method, s, t, masks):
    t = [x.detach() for x in t]
    nodes = lambda f: f.flatten(2).transpose(1, 2)
    both = lambda loss: loss(s[1], t[1]) + loss(s[2], t[2])
    if method == "kd":
        return {"kd": KD_WEIGHT * distillation_kl(s[0], t[0], KD_TAU)}
    if method == "at":
        return {"at": AT_WEIGHT * both(lambda a, b: attention_transfer(a, b, p=AT_P))}
    if method == "skd":
        pooled = F.adaptive_avg_pool2d(t[2], s[2].shape[2:])
        return {"pixel": SKD_PIXEL * distillation_kl(s[0], t[0], 1.0), "pair": SKD_PAIR * skd(nodes(s[2]), nodes(pooled))}
    if method == "ifvd":
        return {"pixel": SKD_PIXEL * distillation_kl(s[0], t[0], 1.0), "ifvd": IFVD_WEIGHT * ifvd(s[2], t[2], masks, 2)}
    if method == "cwd":
        return {"cwd": CWD_WEIGHT * cwd(s[0], t[0], CWD_TAU)}
    assert method == "emkd"
    return {"pmd": EMKD_PMD * distillation_kl(s[0], t[0], 4.0),
            "imd": EMKD_IMD * both(lambda a, b: attention_transfer(a, b, p=4.0, sum_over_positions=True)),
            "rad": EMKD_RAD * both(lambda a, b: rad(a, b, masks))}


def baselines(w):
    """add_baseline_terms for each method with BaselineConfig's defaults."""
    masks = baseline_masks()
    for k, shape in enumerate(STUDENT_SHAPES[1:] + TEACHER_SHAPES[1:]):
        m = F.interpolate(masks.unsqueeze(1), size=shape[2:], mode="nearest")
        assert ((m.sum((1, 2, 3)) > 0) & ((1 - m).sum((1, 2, 3)) > 0)).all(), "a region is empty at a feature size"
    names = ["logits", "mid", "bottleneck"]
    for dtype in (torch.float64, torch.float32):
        rounded = lambda t: t.to(dtype).to(torch.float64)
        for method in ("kd", "at", "skd", "ifvd", "cwd", "emkd"):
            tag = f"baseline.{'float64' if dtype == torch.float64 else 'float32'}.{method}"
            s = [rounded(sc * formula(f"distill.baseline.student.{n}", sh)).requires_grad_(True)
                 for n, sh, sc in zip(names, STUDENT_SHAPES, SCALES)]
            t = [rounded(sc * formula(f"distill.baseline.teacher.{n}", sh)) for n, sh, sc in zip(names, TEACHER_SHAPES, SCALES)]
            for term, value in baseline_terms(method, s, t, masks).items():
                trainable(w, tag, term, value, dict(zip(names, s)))


def generate(w):
    # ACT and DICD in float64 only: through the deep frozen networks, float32 rounding alone moves some
    # cancelled gradient elements by up to ~1e-3 (PyTorch's own float32 too), beyond a 1e-5 check.
    act(w, torch.float64)
    dcgd(w)
    dicd_case(w, torch.float64)
    baselines(w)
