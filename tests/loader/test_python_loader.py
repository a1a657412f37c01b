#!/usr/bin/env python3
"""kernels_loader's Python package against a PyTorch reference, on a GPU.

Runs under pytest or directly (`python3 test_python_loader.py`). Without torch or a CUDA device
it prints "SKIPPED: <reason>" (CTest reports the test as skipped). Inputs are fresh random each
run; outputs are compared with fp32 PyTorch attention. Tolerances (bf16): out 2e-2 absolute,
LSE 1e-2 absolute: bf16 rounds to 2^-8 relative, the kernels accumulate in fp32.
"""
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import torch
except ImportError:  # CI without torch
    torch = None

import kernels_loader  # noqa: E402  (PYTHONPATH=loader/python)
from run_tests import run_tests  # noqa: E402  (tests/loader, this file's directory)

OUT_TOL = 2e-2
LSE_TOL = 1e-2


def skip_reason():
    if torch is None:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device"
    return None


if "pytest" in sys.modules and skip_reason() is not None:
    import pytest

    pytest.skip(skip_reason(), allow_module_level=True)


def reference(q, k, v, causal, scale=None):
    """fp32 attention for one sequence: q (s_q, h, d), k/v (s_k, h_k, d). Returns out, lse (h, s_q)."""
    s_q, h, d = q.shape
    s_k, h_k, _ = k.shape
    scale = scale or 1.0 / math.sqrt(d)
    k = k.float().repeat_interleave(h // h_k, dim=1)
    v = v.float().repeat_interleave(h // h_k, dim=1)
    s = torch.einsum("qhd,khd->hqk", q.float(), k) * scale
    if causal:
        i = torch.arange(s_q, device=q.device)[:, None]
        j = torch.arange(s_k, device=q.device)[None, :]
        s = s.masked_fill(j > i + s_k - s_q, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return torch.einsum("hqk,khd->qhd", p, v), lse


def ragged(lens, h, d, dtype=torch.bfloat16 if torch else None):
    total = sum(lens)
    cu = torch.tensor([0] + list(torch.tensor(lens).cumsum(0)), dtype=torch.int32, device="cuda")
    return torch.randn(total, h, d, dtype=dtype, device="cuda"), cu


def test_varlen_causal_gqa_matches_reference():
    lens = [int(x) for x in torch.randint(1, 200, (5,))] + [1]
    h, h_k, d = 16, 4, 128
    q, cu = ragged(lens, h, d)
    k, _ = ragged(lens, h_k, d)
    v, _ = ragged(lens, h_k, d)
    out, lse = kernels_loader.flash_attn_varlen_func(q, k, v, cu, cu, max(lens), max(lens),
                                                     causal=True, return_softmax_lse=True)
    assert out.shape == q.shape and out.dtype == q.dtype
    assert lse.shape == (h, q.shape[0]) and lse.dtype == torch.float32
    for b, n in enumerate(lens):
        s, e = int(cu[b]), int(cu[b + 1])
        ro, rl = reference(q[s:e], k[s:e], v[s:e], True)
        assert (out[s:e].float() - ro).abs().max().item() <= OUT_TOL
        assert (lse[:, s:e] - rl).abs().max().item() <= LSE_TOL


def test_default_return_is_out_only():
    q, cu = ragged([7, 9], 8, 64)
    k, _ = ragged([7, 9], 8, 64)
    out = kernels_loader.flash_attn_varlen_func(q, k, k, cu, cu, 9, 9)
    assert isinstance(out, torch.Tensor) and out.shape == q.shape


def paged_case(page_size, lens, h=8, h_k=2, d=128):
    b = len(lens)
    max_pages = max(-(-n // page_size) for n in lens)
    num_pages = b * max_pages + 3
    k_cache = torch.randn(num_pages, page_size, h_k, d, dtype=torch.bfloat16, device="cuda")
    v_cache = torch.randn_like(k_cache)
    table = torch.randperm(num_pages, device="cuda")[: b * max_pages].view(b, max_pages).int()
    return k_cache, v_cache, table


def gather(cache, table_row, n, page_size):
    idx = torch.arange(n, device="cuda")
    return cache[table_row[idx // page_size].long(), idx % page_size]


def test_kvcache_paged_decode_matches_reference():
    for page_size in (1, 16, 64):
        lens = [int(x) for x in torch.randint(1, 700, (4,))]
        h, h_k, d = 8, 2, 128
        k_cache, v_cache, table = paged_case(page_size, lens, h, h_k, d)
        q = torch.randn(len(lens), 1, h, d, dtype=torch.bfloat16, device="cuda")
        seqlens = torch.tensor(lens, dtype=torch.int32, device="cuda")
        out, lse = kernels_loader.flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=seqlens,
                                                         page_table=table, causal=True,
                                                         return_softmax_lse=True)
        assert out.shape == q.shape and lse.shape == (len(lens), h, 1)
        for b, n in enumerate(lens):
            kb = gather(k_cache, table[b], n, page_size)
            vb = gather(v_cache, table[b], n, page_size)
            ro, rl = reference(q[b], kb, vb, True)
            assert (out[b].float() - ro).abs().max().item() <= OUT_TOL, page_size
            assert (lse[b, :, 0] - rl[:, 0]).abs().max().item() <= LSE_TOL, page_size


def test_kvcache_int_cache_seqlens_uses_the_query_batch():
    page_size, lens = 16, [40, 40, 40]
    k_cache, v_cache, table = paged_case(page_size, lens)
    q = torch.randn(3, 2, 8, 128, dtype=torch.bfloat16, device="cuda")
    a = kernels_loader.flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=40, page_table=table,
                                               causal=True)
    b = kernels_loader.flash_attn_with_kvcache(
        q, k_cache, v_cache, cache_seqlens=torch.full((3,), 40, dtype=torch.int32, device="cuda"),
        page_table=table, causal=True)
    assert torch.equal(a, b)


def test_errors_raise_with_the_rule_and_launch_nothing():
    q, cu = ragged([4], 8, 128)
    k, _ = ragged([4], 8, 128)
    out = torch.full_like(q, 7.0)
    try:
        kernels_loader.flash_attn_varlen_func(q, k.half(), k, cu, cu, 4, 4, out=out)
        raise AssertionError("a dtype mismatch was accepted")
    except kernels_loader.KernelsLoaderError as e:
        assert e.status == kernels_loader.KL_ERR_INVALID_ARGUMENT
        assert "[dtype_mismatch]" in str(e)
    torch.cuda.synchronize()
    assert bool((out == 7.0).all())


def test_debug_value_checks_catch_bad_cu_seqlens():
    q, _ = ragged([4, 4], 8, 128)
    bad = torch.tensor([0, 5, 4], dtype=torch.int32, device="cuda")  # decreasing
    os.environ["KERNELS_LOADER_DEBUG_CHECKS"] = "1"
    try:
        kernels_loader.flash_attn_varlen_func(q, q, q, bad, bad, 5, 5)
        raise AssertionError("decreasing cu_seqlens were accepted")
    except kernels_loader.KernelsLoaderError as e:
        assert "[values]" in str(e) and "non-decreasing" in str(e)
    finally:
        del os.environ["KERNELS_LOADER_DEBUG_CHECKS"]


def test_ver4_without_bundle_is_a_clear_error():
    q, cu = ragged([4], 8, 128)
    try:
        kernels_loader.flash_attn_varlen_func(q, q, q, cu, cu, 4, 4, ver=4)
        src = kernels_loader.device_source(q.device.index or 0, 4)
        assert src["source"] == "bundle", src
    except kernels_loader.KernelsLoaderError as e:
        assert e.status == kernels_loader.KL_ERR_NO_VARIANT
        assert "ver=4" in str(e)


def test_cuda_graph_capture_and_replay():
    lens = [33, 100]
    q, cu = ragged(lens, 8, 128)
    k, _ = ragged(lens, 2, 128)
    v, _ = ragged(lens, 2, 128)
    out = torch.empty_like(q)
    kernels_loader.flash_attn_varlen_func(q, k, v, cu, cu, 100, 100, causal=True, out=out)  # warm-up
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        kernels_loader.flash_attn_varlen_func(q, k, v, cu, cu, 100, 100, causal=True, out=out)
    q.copy_(torch.randn_like(q))
    out.fill_(float("nan"))
    g.replay()
    torch.cuda.synchronize()
    for b in range(2):
        s, e = int(cu[b]), int(cu[b + 1])
        ro, _ = reference(q[s:e], k[s:e], v[s:e], True)
        assert (out[s:e].float() - ro).abs().max().item() <= OUT_TOL


def test_python_call_overhead_report():
    q, cu = ragged([1], 8, 128)
    k, cuk = ragged([256], 1, 128)
    out = torch.empty_like(q)
    for _ in range(50):
        kernels_loader.flash_attn_varlen_func(q, k, k, cu, cuk, 1, 256, causal=True, out=out)
    torch.cuda.synchronize()
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        kernels_loader.flash_attn_varlen_func(q, k, k, cu, cuk, 1, 256, causal=True, out=out)
    host = (time.perf_counter() - t0) / n * 1e6
    torch.cuda.synchronize()
    print("python.flash_attn_varlen_func host time per call: %.1f us" % host)


def main():
    why = skip_reason()
    if why:
        print("SKIPPED: " + why)
        return 0
    src = kernels_loader.device_source(0, 3)
    print("device_source(0, 3):", src)
    return run_tests(globals())


if __name__ == "__main__":
    sys.exit(main())
