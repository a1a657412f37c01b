#!/usr/bin/env python3
"""Write a copy of the sm_90a kernel with parts of its key-block step that can be left out.

The kernel lab (scripts/sm90_kernel_lab.cu) built with -DKERNELS_SM90_ABLATE and with the copy's
directory ahead of the repository on the include path (-I OUT -I .) times variants that leave one
part of the softmax, or one GEMM, out: the "leave one stage out" measurement, which under the
H200's power limit says what each part costs in energy as well as in time. The copy computes
wrong outputs whenever a part is left out; the lab does not check those variants.

A variant is Tr with `static constexpr int kAblate` set to an or of the bits below. The softmax
bits act on the step that takes the row max every key block (softmax_step: d >= 192, or
kCheckedOffset off), as the kernel was when they were measured (ladder step 35).

Usage: scripts/sm90_ablate.py OUT   (writes OUT/kernels/attention_sm90/fwd_kernel.cuh)
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
KERNEL = "kernels/attention_sm90/fwd_kernel.cuh"

BITS = """\
// Ablation bits (scripts/sm90_ablate.py): parts of the key-block step left out.
inline constexpr int kAblateExp = 1;       // P = the exponent (no MUFU.EX2)
inline constexpr int kAblateMax = 2;       // no row max (offset 0)
inline constexpr int kAblateRescale = 4;   // O not rescaled
inline constexpr int kAblateSum = 8;       // no row sum
inline constexpr int kAblateSoftmax = 16;  // no softmax at all: P = S
inline constexpr int kAblatePv = 32;       // no P V (S = Q K^T only)
inline constexpr int kAblatePack = 64;     // P not packed (P V reads the previous block's)
// Not a part left out but a variant of one: the row max as a tree of depth log2(kBlockN / 4)
// instead of a chain of kBlockN / 8 dependent FMNMX.
inline constexpr int kVariantTreeMax = 128;
// And the row sum as four interleaved partial sums instead of one chain.
inline constexpr int kVariantTreeSum = 256;
// P V's operands read another way, for timing only (wrong results): V through a K-major
// descriptor (as if stored transposed), and A from shared memory (Q's tile) instead of registers.
inline constexpr int kTimePvKMajorV = 512;
inline constexpr int kTimePvSharedA = 1024;
// The pipeline: consumers that do not wait for K/V to land (timing only), no ping-pong turns,
// P V issued before S in a turn (correct), and the producer loading K one block ahead of V
// (correct without paging).
inline constexpr int kTimeNoFullWait = 2048;
inline constexpr int kAblateTurns = 4096;
inline constexpr int kVariantPvFirst = 8192;
inline constexpr int kVariantKAhead = 16384;
"""

# (what to find, what to put instead); each must occur exactly once.
EDITS = [
    ("namespace kernels::attention {\n", "namespace kernels::attention {\n\n" + BITS),
    (
        "  static constexpr bool kMaskBits = !kSoftmaxUnderPv;\n",
        "  static constexpr bool kMaskBits = !kSoftmaxUnderPv;\n"
        "  static constexpr int kAblate = 0;\n",
    ),
    (
        "    bool moved = false;\n    cap_and_mask(cap, mask, w, it);\n",
        "    bool moved = false;\n"
        "    if constexpr ((Tr::kAblate & kAblateSoftmax) != 0) return false;\n"
        "    cap_and_mask(cap, mask, w, it);\n",
    ),
    (
        "#pragma unroll\n"
        "    for (int c = 0; c < kBlockN / 8; ++c)\n"
        "      mx = fmaxf(mx, fmaxf(s[4 * c + 2 * r], s[4 * c + 2 * r + 1]));\n",
        "    if constexpr ((Tr::kAblate & kVariantTreeMax) != 0) {\n"
        "      float t[kBlockN / 8];\n"
        "#pragma unroll\n"
        "      for (int c = 0; c < kBlockN / 8; ++c) t[c] = fmaxf(s[4 * c + 2 * r], s[4 * c + 2 * r + 1]);\n"
        "#pragma unroll\n"
        "      for (int w = 1; w < kBlockN / 8; w *= 2)\n"
        "#pragma unroll\n"
        "        for (int c = 0; c + w < kBlockN / 8; c += 2 * w) t[c] = fmaxf(t[c], t[c + w]);\n"
        "      mx = fmaxf(mx, t[0]);\n"
        "    } else {\n"
        "#pragma unroll\n"
        "    for (int c = 0; c < kBlockN / 8; ++c)\n"
        "      mx = fmaxf(mx, fmaxf(s[4 * c + 2 * r], s[4 * c + 2 * r + 1]));\n"
        "    }\n",
    ),
    (
        "      float mx = block_row_max(r);\n",
        "      float mx = block_row_max(r);\n"
        "      if constexpr ((Tr::kAblate & kAblateMax) != 0) mx = 0.0f;\n",
    ),
    (
        "      float sum = 0.0f;\n",
        "      float sum = 0.0f;\n"
        "      float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};\n",
    ),
    (
        "          const float pe = device::fast_exp2(fmaf(s[4 * c + 2 * r + e], scale_log2, -base));\n"
        "          s[4 * c + 2 * r + e] = pe;\n"
        "          sum += pe;\n"
        "        }\n",
        "          const float x = fmaf(s[4 * c + 2 * r + e], scale_log2, -base);\n"
        "          const float pe = (Tr::kAblate & kAblateExp) != 0 ? x : device::fast_exp2(x);\n"
        "          s[4 * c + 2 * r + e] = pe;\n"
        "          if constexpr ((Tr::kAblate & kVariantTreeSum) != 0) part[(2 * c + e) % 4] += pe;\n"
        "          else if constexpr ((Tr::kAblate & kAblateSum) == 0) sum += pe;\n"
        "        }\n"
        "      if constexpr ((Tr::kAblate & kVariantTreeSum) != 0)\n"
        "        sum = (part[0] + part[1]) + (part[2] + part[3]);\n",
    ),
    (
        "  auto pack_p = [&] {\n",
        "  auto pack_p = [&] {\n"
        "    if constexpr ((Tr::kAblate & kAblatePack) != 0) return;\n",
    ),
    (
        "    if (!needed) return;\n",
        "    if (!needed || (Tr::kAblate & (kAblateRescale | kAblateSoftmax)) != 0) return;\n",
    ),
    (
        "      issue_qk(g);\n      issue_pv(g - 1);\n      gemm_turn_end();\n      device::wgmma_wait<1>();\n",
        "      issue_qk(g);\n"
        "      if constexpr ((Tr::kAblate & kAblatePv) == 0) issue_pv(g - 1);\n"
        "      gemm_turn_end();\n"
        "      device::wgmma_wait<(Tr::kAblate & kAblatePv) != 0 ? 0 : 1>();\n",
    ),
    (
        "      device::Wgmma<T, DV>::template rs<1>(o, a[kk], device::mn_major_desc<kBlockN>(v_tile(g), kk),\n"
        "                                           1);\n",
        "    {\n"
        "      constexpr bool kmaj = (Tr::kAblate & kTimePvKMajorV) != 0;\n"
        "      const uint64_t vd = kmaj ? device::k_major_desc<kBlockN>(v_tile(g), kk % 8)\n"
        "                               : device::mn_major_desc<kBlockN>(v_tile(g), kk);\n"
        "      if constexpr ((Tr::kAblate & kTimePvSharedA) != 0)\n"
        "        device::Wgmma<T, DV>::template ss<kmaj ? 0 : 1>(\n"
        "            o, device::k_major_desc<kBlockM>(q_tile(), kk % 8), vd, 1);\n"
        "      else device::Wgmma<T, DV>::template rs<kmaj ? 0 : 1>(o, a[kk], vd, 1);\n"
        "    }\n",
    ),
    (
        "      device::mbarrier_wait(bar.k_full + g % kStages, phase(g));\n"
        "      device::mbarrier_wait(bar.v_full + (g - 1) % kStages, phase(g - 1));\n",
        "      if constexpr ((Tr::kAblate & kTimeNoFullWait) == 0) {\n"
        "      device::mbarrier_wait(bar.k_full + g % kStages, phase(g));\n"
        "      device::mbarrier_wait(bar.v_full + (g - 1) % kStages, phase(g - 1));\n"
        "      }\n",
    ),
    (
        "  auto gemm_turn_begin = [&] { device::named_barrier_sync(kFirstBarrier + wg, kPair); };\n"
        "  auto gemm_turn_end = [&] {\n",
        "  auto gemm_turn_begin = [&] {\n"
        "    if constexpr ((Tr::kAblate & kAblateTurns) == 0)\n"
        "      device::named_barrier_sync(kFirstBarrier + wg, kPair);\n"
        "  };\n"
        "  auto gemm_turn_end = [&] {\n"
        "    if constexpr ((Tr::kAblate & kAblateTurns) != 0) return;\n",
    ),
    (
        "    if (wg == Tr::kConsumers - 1) device::named_barrier_arrive(kFirstBarrier, kPair);\n",
        "    if ((Tr::kAblate & kAblateTurns) == 0 && wg == Tr::kConsumers - 1)\n"
        "      device::named_barrier_arrive(kFirstBarrier, kPair);\n",
    ),
    (
        "    if (wg == 0) device::named_barrier_sync(kFirstBarrier, kPair);\n",
        "    if ((Tr::kAblate & kAblateTurns) == 0 && wg == 0)\n"
        "      device::named_barrier_sync(kFirstBarrier, kPair);\n",
    ),
    (
        "      issue_qk(g);\n"
        "      if constexpr ((Tr::kAblate & kAblatePv) == 0) issue_pv(g - 1);\n"
        "      gemm_turn_end();\n"
        "      device::wgmma_wait<(Tr::kAblate & kAblatePv) != 0 ? 0 : 1>();\n",
        "      if constexpr ((Tr::kAblate & kVariantPvFirst) != 0) {\n"
        "        issue_pv(g - 1);\n"
        "        issue_qk(g);\n"
        "        gemm_turn_end();\n"
        "        device::wgmma_wait<0>();\n"
        "        device::fence_registers(o);\n"
        "        device::fence_registers(a);\n"
        "      } else {\n"
        "      issue_qk(g);\n"
        "      if constexpr ((Tr::kAblate & kAblatePv) == 0) issue_pv(g - 1);\n"
        "      gemm_turn_end();\n"
        "      device::wgmma_wait<(Tr::kAblate & kAblatePv) != 0 ? 0 : 1>();\n"
        "      }\n",
    ),
    (
        "          load_block(std::integral_constant<int, Tr::kChunksV>{}, sV, &tp.v, bar.v_full,\n"
        "                     bar.v_empty, slot, phase, key0);\n",
        "          if constexpr ((Tr::kAblate & kVariantKAhead) != 0) {\n"
        "            if (it > 0)\n"
        "              load_block(std::integral_constant<int, Tr::kChunksV>{}, sV, &tp.v, bar.v_full,\n"
        "                         bar.v_empty, (kv - 1) % kStages, ((kv - 1) / kStages) & 1,\n"
        "                         key0 + kBlockN);\n"
        "            if (it == w.n_blocks - 1)\n"
        "              load_block(std::integral_constant<int, Tr::kChunksV>{}, sV, &tp.v, bar.v_full,\n"
        "                         bar.v_empty, slot, phase, key0);\n"
        "          } else\n"
        "          load_block(std::integral_constant<int, Tr::kChunksV>{}, sV, &tp.v, bar.v_full,\n"
        "                     bar.v_empty, slot, phase, key0);\n",
    ),
    (
        "    issue_pv(last);\n",
        "    if constexpr ((Tr::kAblate & kAblatePv) == 0) issue_pv(last);\n",
    ),
]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    text = (ROOT / KERNEL).read_text()
    for old, new in EDITS:
        n = text.count(old)
        if n != 1:
            print(f"sm90_ablate: expected one occurrence, found {n}: {old.strip()[:60]!r}",
                  file=sys.stderr)
            return 1
        text = text.replace(old, new)
    out = pathlib.Path(sys.argv[1]) / KERNEL
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
