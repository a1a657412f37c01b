#!/usr/bin/env python3
"""Generates the built-in attention kernels' instantiations, their table and the bundle manifest.

  gen_attention_instances.py generate OUT_DIR CUDA_VERSION
                                                instances/*.cu, all_instances.cu, kernel_table.inc,
                                                instances.cmake, manifest.json ("cuda": CUDA_VERSION)
  gen_attention_instances.py embed FATBIN OUT_CPP
                                                kernels::attention::builtin_image() over the bytes

One forward kernel per (head dim, v head dim, dtype) and one combine kernel per (v head dim,
dtype); causal, window, softcap, paging, varlen, sinks, LSE and splits are runtime flags. The
configurations (tiles, warps) live here and nowhere else: the .cu files, the host table the
planner reads and the bundle manifest all come from CONFIGS, so they cannot disagree.
"""
import json
import os
import sys

PARAMS_ABI = 1  # must equal kernels::attention::kParamsAbiVersion (checked by a test)

# (head_dim, head_dim_v, warps, block_m, block_n, stages). Shared memory: the Q tile plus a ring of
# `stages` K/V tile pairs, rows padded to a multiple of 64 elements (the swizzle works on 128-byte
# rows). d = 192 prefill uses 64-key tiles at 129 KiB (192x128) and 145 KiB (192x192): its 8-warp
# blocks need ~240 registers per thread, so one block per SM either way, and 64-key tiles halve
# the barriers (measured 234 -> 300 TFLOP/s, docs/PERFORMANCE.md); the others stay at or under
# 97 KiB, two blocks per SM. The block_m = 64 variants serve calls with
# at most 64 packed query rows (decode: seqlen_q * h/h_k), where a 128-row tile would be mostly
# padding; they keep one more K/V pair in flight, since decode is bound by memory latency.
CONFIGS = [
    (64, 64, 4, 128, 64, 2),
    (96, 96, 4, 128, 64, 2),
    (128, 128, 4, 128, 64, 2),
    (192, 192, 8, 128, 64, 2),
    (192, 128, 8, 128, 64, 2),
    (256, 256, 4, 64, 32, 2),
    (64, 64, 4, 64, 64, 3),
    (96, 96, 4, 64, 64, 3),
    (128, 128, 4, 64, 64, 3),
    (192, 192, 4, 64, 32, 3),
    (192, 128, 4, 64, 32, 3),
]
# The sm_90a TMA/wgmma kernels (kernels/attention_sm90), in the Hopper bundle only:
# (head_dim, head_dim_v, block_n, stages, consumer warpgroups). block_m is 64 rows per consumer
# warpgroup. Tiles chosen by measurement (scripts/sm90_kernel_lab.cu, docs/PERFORMANCE.md): d64
# gains 20% at 16k from a third consumer warpgroup, but its 128-row tile is 11-13% faster for
# masked calls of at most 1024 query rows; d256 n80 beats n64 by 8-12% at 16k, n64 is ~5-8%
# faster at 512 causal; d192 n64 is 3-8% faster than n112 at 512 causal. Where a head dim has
# two tiles, plan_forward_sm90 gives short masked calls the smaller one. d128 n176 is 1-4% faster
# than n128 for calls with more than 4096 keys (one block per tile) and 2-19% slower for shorter
# (persistent) ones: the plan gives it only those (key tiles wider than 128). q/k 192 with v 128
# (MLA-style prefill) takes d128's 128-key block; d96 too, its rows padded to 128 columns in
# shared memory (S and P V compute 96). The first tile of a head dim pair keeps the plain name.
SM90_CONFIGS = [
    (64, 64, 128, 2, 3),
    (64, 64, 128, 2, 2),
    (96, 96, 128, 2, 2),
    (128, 128, 128, 2, 2),
    (128, 128, 176, 2, 2),
    (192, 192, 112, 2, 2),
    (192, 192, 64, 2, 2),
    (192, 128, 128, 2, 2),
    (256, 256, 80, 2, 2),
    (256, 256, 64, 2, 2),
]
DTYPES = [("bf16", "__nv_bfloat16", 1), ("fp16", "__half", 0)]
COMBINE_THREADS = 128
COMBINE_ROWS = 4  # one warp per (row, head)


def pad64(x):
    return (x + 63) // 64 * 64


def fwd_name(d, dv, block_m, dt):
    hd = f"hd{d}" if d == dv else f"hd{d}x{dv}"
    # The widest tile of a head dim keeps the plain name; narrower ones say their rows.
    widest = max(c[3] for c in CONFIGS if c[0] == d and c[1] == dv)
    tile = "" if block_m == widest else f"_m{block_m}"
    return f"kernels_attn_fwd_{hd}{tile}_{dt}"


def combine_name(dv, dt):
    return f"kernels_attn_combine_hd{dv}_{dt}"


def sm90_name(d, dv, block_n, consumers, dt):
    # The first tile of a head dim pair keeps the plain name; another says its rows and keys.
    hd = f"hd{d}" if d == dv else f"hd{d}x{dv}"
    first = next(c for c in SM90_CONFIGS if c[0] == d and c[1] == dv)
    tile = "" if (block_n, consumers) == (first[2], first[4]) else f"_m{64 * consumers}n{block_n}"
    return f"kernels_attn_fwd_sm90_{hd}{tile}_{dt}"


def sm90_smem(d, dv, block_n, stages, consumers):
    # Q tile, K and V rings (rows in whole 128-byte chunks), the barriers, the gathered pages' row
    # tables, and 1024 bytes to align the tiles (Sm90FwdTraits).
    return (2 * (64 * consumers * pad64(d) + stages * block_n * (pad64(d) + pad64(dv)))
            + (2 + 4 * stages) * 8 + 2 * block_n * 8 + 1024)


def fwd_smem(d, dv, block_m, block_n, stages):
    # + (page, slot) int pairs for each key row of two blocks (paged K/V)
    return 2 * (block_m * pad64(d) + stages * block_n * (pad64(d) + pad64(dv))) + 2 * block_n * 8


def kernels():
    out = []
    for dt, ctype, dcode in DTYPES:
        for d, dv, warps, bm, bn, stages in CONFIGS:
            out.append(dict(kind="forward", name=fwd_name(d, dv, bm, dt), head_dim=d, head_dim_v=dv,
                            dtype=dt, ctype=ctype, dcode=dcode, threads=32 * warps,
                            smem_bytes=fwd_smem(d, dv, bm, bn, stages), block_m=bm, block_n=bn,
                            warps=warps, stages=stages))
        for d, dv, bn, stages, consumers in SM90_CONFIGS:
            out.append(dict(kind="forward_sm90", name=sm90_name(d, dv, bn, consumers, dt), head_dim=d,
                            head_dim_v=dv, dtype=dt, ctype=ctype, dcode=dcode, threads=128 * (consumers + 1),
                            smem_bytes=sm90_smem(d, dv, bn, stages, consumers), block_m=64 * consumers,
                            block_n=bn, stages=stages, consumers=consumers))
        for dv in sorted({c[1] for c in CONFIGS}):
            out.append(dict(kind="combine", name=combine_name(dv, dt), head_dim=dv, head_dim_v=dv,
                            dtype=dt, ctype=ctype, dcode=dcode, threads=COMBINE_THREADS,
                            smem_bytes=0, block_m=COMBINE_ROWS, block_n=0, warps=COMBINE_THREADS // 32))
    return out


HEADER = "// Generated by scripts/gen_attention_instances.py; do not edit.\n"


def write_if_changed(path, text):
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    with open(path, "w") as f:
        f.write(text)


def instance_source(k):
    if k["kind"] == "forward_sm90":
        traits = (f'kernels::attention::Sm90FwdTraits<{k["head_dim"]}, {k["block_n"]}, '
                  f'{k["stages"]}, {k["ctype"]}, {k["consumers"]}, 1, true, {k["head_dim_v"]}>')
        return (HEADER + '#include "kernels/attention_sm90/fwd_kernel.cuh"\n\n'
                f'static_assert({traits}::kSmemBytes == {k["smem_bytes"]} &&\n'
                f'              {traits}::kThreads == {k["threads"]} &&\n'
                f'              {traits}::kBlockM == {k["block_m"]},\n'
                f'              "the host kernel table must match the traits");\n\n'
                f'extern "C" __global__ void __launch_bounds__({k["threads"]}, 1)\n'
                f'{k["name"]}(const __grid_constant__ kernels::attention::TmaFwdParams params) {{\n'
                f'  kernels::attention::attention_forward_sm90<{traits}>(params);\n}}\n')
    if k["kind"] == "forward":
        traits = (f'kernels::attention::FwdTraits<{k["head_dim"]}, {k["head_dim_v"]}, {k["warps"]}, '
                  f'{k["block_m"]}, {k["block_n"]}, {k["stages"]}, {k["ctype"]}>')
        return (HEADER + '#include "kernels/attention/fwd_kernel.cuh"\n\n'
                f'static_assert({traits}::kSmemBytes == {k["smem_bytes"]},\n'
                f'              "the host kernel table must match the traits");\n\n'
                f'extern "C" __global__ void __launch_bounds__({k["threads"]})\n'
                f'{k["name"]}(const __grid_constant__ kernels::attention::FwdParams params) {{\n'
                f'  kernels::attention::attention_forward<{traits}>(params);\n}}\n')
    return (HEADER + '#include "kernels/attention/combine_kernel.cuh"\n\n'
            f'extern "C" __global__ void __launch_bounds__({k["threads"]})\n'
            f'{k["name"]}(const __grid_constant__ kernels::attention::CombineParams params) {{\n'
            f'  kernels::attention::attention_combine<{k["head_dim_v"]}, {k["ctype"]}>(params);\n}}\n')


def generate(out_dir, cuda_version):
    inst_dir = os.path.join(out_dir, "instances")
    os.makedirs(inst_dir, exist_ok=True)
    ks = kernels()
    for k in ks:
        write_if_changed(os.path.join(inst_dir, k["name"] + ".cu"), instance_source(k))
    # The built-in image (and the bundle) get the portable kernels; sm_90a builds also the TMA ones.
    portable = [k["name"] for k in ks if k["kind"] != "forward_sm90"]
    sm90 = [k["name"] for k in ks if k["kind"] == "forward_sm90"]
    write_if_changed(os.path.join(out_dir, "all_instances.cu"),
                     HEADER + "".join(f'#include "instances/{n}.cu"\n' for n in portable))
    # One translation unit, compiled whole (no -rdc): setmaxnreg is ignored in relocatable code.
    write_if_changed(os.path.join(out_dir, "sm90_instances.cu"),
                     HEADER + "".join(f'#include "instances/{n}.cu"\n' for n in sm90))
    write_if_changed(os.path.join(out_dir, "instances.cmake"),
                     "# Generated by scripts/gen_attention_instances.py; do not edit.\n"
                     "set(KERNELS_ATTENTION_INSTANCES\n" +
                     "".join(f"  {n}\n" for n in portable) + ")\n"
                     "set(KERNELS_ATTENTION_SM90_INSTANCES\n" +
                     "".join(f"  {n}\n" for n in sm90) + ")\n")
    rows = []
    for k in ks:
        kind = {"forward": "KernelKind::forward", "combine": "KernelKind::combine",
                "forward_sm90": "KernelKind::forward_sm90"}[k["kind"]]
        dtype = "DType::bf16" if k["dtype"] == "bf16" else "DType::fp16"
        rows.append(f'    {{"{k["name"]}", {kind}, {k["head_dim"]}, {k["head_dim_v"]}, {dtype}, '
                    f'{k["threads"]}, {k["smem_bytes"]}, {k["block_m"]}, {k["block_n"]}}},\n')
    write_if_changed(os.path.join(out_dir, "kernel_table.inc"),
                     HEADER + f"// params ABI {PARAMS_ABI}\n" + "".join(rows))
    manifest = {
        "format_version": 1,
        "family": "fa3",
        "params_abi": PARAMS_ABI,
        "arch": "sm90a",
        "cuda": cuda_version,
        "kernels": [
            {"name": k["name"], "kind": k["kind"], "head_dim": k["head_dim"],
             "head_dim_v": k["head_dim_v"], "dtype": k["dtype"], "threads": k["threads"],
             "smem_bytes": k["smem_bytes"], "block_m": k["block_m"], "block_n": k["block_n"]}
            for k in ks if k["kind"] == "forward_sm90"
        ],
    }
    write_if_changed(os.path.join(out_dir, "manifest.json"), json.dumps(manifest, indent=2) + "\n")


def embed(fatbin, out_cpp):
    with open(fatbin, "rb") as f:
        data = f.read()
    lines = []
    for i in range(0, len(data), 24):
        lines.append("  " + ",".join(str(b) for b in data[i:i + 24]) + ",\n")
    text = (HEADER +
            '#include "kernels/attention/builtin_image.h"\n\n'
            "namespace kernels::attention {\nnamespace {\n"
            f"alignas(64) const unsigned char kImage[{len(data)}] = {{\n" + "".join(lines) +
            "};\n}  // namespace\n\n"
            "std::span<const unsigned char> builtin_image() { return {kImage, sizeof(kImage)}; }\n\n"
            "}  // namespace kernels::attention\n")
    write_if_changed(out_cpp, text)


def main(argv):
    if len(argv) == 4 and argv[1] == "generate":
        generate(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "embed":
        embed(argv[2], argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
