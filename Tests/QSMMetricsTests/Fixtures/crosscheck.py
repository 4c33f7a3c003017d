#!/usr/bin/env python3
"""Optional peer cross-check for QSMMetricsTests (run by CrossCheckTests when a Python with
qsm-ci 0.6.2, numpy, scipy and scikit-image is available; never needed by the product).

Usage: crosscheck.py NX NY NZ RECON.f64 TRUTH.f64 MASK.u8 SEG.i32
Volumes are raw little-endian arrays in x-fastest (Fortran) order. Prints one JSON object.
"""
import json
import sys

import numpy as np
import qsm_ci.qsm_eval as qe
from skimage.metrics import normalized_mutual_information, structural_similarity


def load(path, dtype, shape):
    return np.fromfile(path, dtype=dtype).reshape(shape, order="F")


def main():
    shape = tuple(int(v) for v in sys.argv[1:4])
    recon = load(sys.argv[4], "<f8", shape)
    truth = load(sys.argv[5], "<f8", shape)
    mask = load(sys.argv[6], "u1", shape)
    seg = load(sys.argv[7], "<i4", shape)
    metrics, regions = qe.score_arrays(recon, truth, mask, kind="chi", seg=seg)
    m = mask > 0
    r0 = np.where(m & np.isfinite(recon), recon, 0.0)
    t0 = np.where(m, truth, 0.0)
    out = {
        "qsmci": {k: (None if isinstance(v, float) and v != v else v) for k, v in metrics.items()},
        "regions": regions,
        "nmi": float(normalized_mutual_information(t0[m], r0[m], bins=100)),
        "ssim_skimage": float(structural_similarity(r0, t0, gaussian_weights=True, sigma=1.5,
                                                    use_sample_covariance=False,
                                                    data_range=float(t0.max() - t0.min()))),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
