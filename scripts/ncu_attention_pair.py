#!/usr/bin/env python3
"""One attention shape through kernels_loader and through PyTorch SDPA cuDNN, a few calls each,
for Nsight Compute to profile both kernels side by side (where their time and energy go:
instructions, shared-memory and L2 traffic, tensor-pipe activity). A development tool:

  ncu --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \\
      --section InstructionStats -k 'regex:kernels_attn_fwd_sm90|cudnn|sdpa|fmha' -c 2 --csv \\
      python3 scripts/ncu_attention_pair.py --d 128 --seqlen 16384 [--causal]

The loader library and cache come from the usual environment (scripts/gpu_e2e_check.sh bench
sets them), as for scripts/bench_attention_loader.py.
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "loader", "python"))
import kernels_loader  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=16384)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--calls", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(0)
    s, h = a.seqlen, 2048 // a.d
    b = 16384 // s
    q = torch.randn(b, s, h, a.d, dtype=torch.bfloat16, device="cuda")
    k, v = torch.randn_like(q), torch.randn_like(q)
    out = torch.empty_like(q)
    cu = torch.arange(0, (b + 1) * s, s, dtype=torch.int32, device="cuda")
    qf, kf, vf, of = (t.view(b * s, h, a.d) for t in (q, k, v, out))
    print(kernels_loader.device_source(0, 3), flush=True)
    for _ in range(a.calls):
        kernels_loader.flash_attn_varlen_func(qf, kf, vf, cu, cu, s, s, causal=a.causal, out=of)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        for _ in range(a.calls):
            F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=a.causal)
    torch.cuda.synchronize()
    return 0


if __name__ == "__main__":
    sys.exit(main())
