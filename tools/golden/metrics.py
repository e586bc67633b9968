# SPDX-License-Identifier: Apache-2.0
"""Golden values for include/gkd/metrics: confusion-matrix metrics and ROC-AUC from scikit-learn on
generated scores (with ties, with FOV masks, accumulated over several images), and HD / HD95 recomputed
independently (brute-force pairwise distances between scipy-eroded surfaces, medpy's definition).

Needs scikit-learn and scipy (tools/deps/pip-data.txt): python3 tools/make_golden.py metrics
"""
import numpy as np
import torch
from scipy import ndimage
from scipy.spatial.distance import cdist
from sklearn.metrics import (accuracy_score, f1_score, jaccard_score, precision_score, recall_score,
                             roc_auc_score)


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def _confusion_metrics(w, key, y, s):
    p = (s >= 0.5).astype(int)
    w.scalar(f"{key}.accuracy", accuracy_score(y, p))
    w.scalar(f"{key}.sensitivity", recall_score(y, p))
    w.scalar(f"{key}.specificity", recall_score(y, p, pos_label=0))
    w.scalar(f"{key}.precision", precision_score(y, p))
    w.scalar(f"{key}.f1", f1_score(y, p))
    w.scalar(f"{key}.iou", jaccard_score(y, p))
    w.scalar(f"{key}.mean_iou", jaccard_score(y, p, average="macro"))
    w.scalar(f"{key}.auc", roc_auc_score(y, s))


def _surface(m):
    return m & ~ndimage.binary_erosion(m, structure=ndimage.generate_binary_structure(2, 1), border_value=0)


def _hausdorff(a, b, spacing):
    pa = np.argwhere(_surface(a)) * np.asarray(spacing)
    pb = np.argwhere(_surface(b)) * np.asarray(spacing)
    d = cdist(pa, pb)
    both = np.hstack([d.min(axis=1), d.min(axis=0)])
    return both.max(), np.percentile(both, 95)


def _blobs(rng, h, w, count):
    m = np.zeros((h, w), dtype=bool)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(count):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, 7)
        m |= (yy - cy) ** 2 + ((xx - cx) * rng.uniform(0.6, 1.4)) ** 2 < r * r
    return m


def generate(w):
    rng = np.random.default_rng(20261126)
    # 1. continuous scores (float32-representable, as gkd stores them), 15% positives
    y = (rng.random(1000) < 0.15).astype(int)
    s = (1 / (1 + np.exp(-(1.5 * y + rng.normal(size=y.size) - 0.8)))).astype(np.float32).astype(np.float64)
    w.tensor("continuous.labels", _t(y))
    w.tensor("continuous.scores", _t(s))
    _confusion_metrics(w, "continuous", y, s)
    # 2. scores on 9 levels: many ties between positives and negatives
    y = (rng.random(1000) < 0.3).astype(int)
    s = np.clip(np.round((0.35 * y + rng.random(y.size) * 0.8) * 8) / 8, 0, 1)
    w.tensor("ties.labels", _t(y))
    w.tensor("ties.scores", _t(s))
    _confusion_metrics(w, "ties", y, s)
    # 3. three images of different sizes with FOV masks, accumulated globally
    ys, ss = [], []
    for i, (h, wd) in enumerate([(12, 20), (17, 9), (15, 15)]):
        yy, xx = np.mgrid[0:h, 0:wd]
        fov = ((yy - h / 2) ** 2 + (xx - wd / 2) ** 2 < (min(h, wd) / 2) ** 2).astype(int)
        lab = (rng.random((h, wd)) < 0.2).astype(int)
        sc = (1 / (1 + np.exp(-(2.0 * lab + rng.normal(size=lab.shape) - 1.0)))).astype(np.float32).astype(np.float64)
        w.tensor(f"fov.image{i}.labels", _t(lab))
        w.tensor(f"fov.image{i}.scores", _t(sc))
        w.tensor(f"fov.image{i}.fov", _t(fov))
        ys.append(lab[fov == 1])
        ss.append(sc[fov == 1])
    _confusion_metrics(w, "fov", np.concatenate(ys), np.concatenate(ss))
    # 4. Hausdorff distance and HD95 on random blob masks, in pixels and with anisotropic spacing
    for i in range(2):
        a, b = _blobs(rng, 28, 32, 4), _blobs(rng, 28, 32, 4)
        w.tensor(f"hd.case{i}.a", _t(a.astype(int)))
        w.tensor(f"hd.case{i}.b", _t(b.astype(int)))
        for tag, spacing in (("unit", (1.0, 1.0)), ("spaced", (0.7, 1.3))):
            hd, hd95 = _hausdorff(a, b, spacing)
            w.scalar(f"hd.case{i}.{tag}.hd", hd)
            w.scalar(f"hd.case{i}.{tag}.hd95", hd95)
