// The launch planner: kernel coverage, refusals, split decisions and workspace sizing. CPU only.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/attention/launch_plan.h"

using namespace kernels::attention;

namespace {

DeviceFacts h100() { return DeviceFacts{9, 0, 132, 232448}; }

// A plausible decode call: 8 sequences, 1 query each, paged cache.
FwdParams decode_params(int seqlen_k) {
  FwdParams p{};
  p.abi_version = kParamsAbiVersion;
  p.dtype = DType::bf16;
  alignas(16) static unsigned char dummy[64];
  static int32_t table[8];
  p.q = p.k = p.v = dummy;
  p.out = dummy;
  p.q_row_stride = 32 * 128;
  p.q_head_stride = 128;
  p.out_row_stride = 32 * 128;
  p.out_head_stride = 128;
  p.k_batch_stride = p.v_batch_stride = 16 * 8 * 128;
  p.k_row_stride = p.v_row_stride = 8 * 128;
  p.k_head_stride = p.v_head_stride = 128;
  p.page_table = table;
  p.page_table_batch_stride = 1;
  p.page_size = 16;
  p.num_pages = 1;
  p.b = 8;
  p.h = 32;
  p.h_k = 8;
  p.d = p.dv = 128;
  p.seqlen_q = 1;
  p.seqlen_k = seqlen_k;
  p.total_q = 8;
  p.q_batch_stride = p.q_row_stride;
  p.out_batch_stride = p.out_row_stride;
  p.softmax_scale = 0.088f;
  p.window_left = p.window_right = -1;
  return p;
}

}  // namespace

TEST_CASE("kernel table covers every head dim and dtype with unique names", "[plan]") {
  std::set<std::string> names;
  int forward = 0;
  for (const KernelInfo& k : kernel_table()) {
    CHECK(names.insert(k.name).second);
    CHECK(k.threads % 32 == 0);
    if (k.kind == KernelKind::forward) {
      ++forward;
      CHECK(k.smem_bytes <= 163 * 1024);  // also fits an sm_80 block
    }
  }
  // {64,96,128,192,256,192x128} x {bf16,fp16}, plus 64-row tiles for all but 256.
  CHECK(forward == 22);
  for (int d : {64, 96, 128, 192, 256})
    for (DType t : {DType::bf16, DType::fp16}) {
      FwdParams p = decode_params(4096);
      p.d = p.dv = d;
      p.dtype = t;
      p.num_splits = 1;
      auto plan = plan_forward(p, h100(), nullptr, 0);
      INFO("d=" << d);
      REQUIRE(plan.ok());
      CHECK(plan->count == 1);
    }
}

TEST_CASE("plan refuses shapes no kernel covers, naming the argument", "[plan]") {
  FwdParams p = decode_params(1024);
  p.num_splits = 1;
  p.d = 320;
  auto r = plan_forward(p, h100(), nullptr, 0);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().object == "FwdParams.d");
  p.d = 128;
  p.dv = 64;  // (128, 64) is not one of FA3's diff-V pairs
  r = plan_forward(p, h100(), nullptr, 0);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().object == "FwdParams.d/dv");
  p.dv = 128;
  p.h_k = 5;
  CHECK_FALSE(plan_forward(p, h100(), nullptr, 0).ok());
  p.h_k = 8;
  p.abi_version = kParamsAbiVersion + 1;
  CHECK_FALSE(plan_forward(p, h100(), nullptr, 0).ok());
  p.abi_version = kParamsAbiVersion;
  CHECK_FALSE(plan_forward(p, DeviceFacts{7, 5, 40, 65536}, nullptr, 0).ok());
  p.d = p.dv = 192;  // 96 KiB of shared memory: an sm_86-class limit below that is refused
  CHECK_FALSE(plan_forward(p, DeviceFacts{8, 6, 84, 64 * 1024}, nullptr, 0).ok());
  p.d = 192;
  p.dv = 128;
  CHECK(plan_forward(p, h100(), nullptr, 0).ok());
}

TEST_CASE("decode splits the keys, sizes the workspace and adds the combine launch", "[plan]") {
  FwdParams p = decode_params(32768);
  p.num_splits = 0;
  const int splits = choose_num_splits(p, h100());
  CHECK(splits > 1);
  const std::size_t ws = workspace_size(p, h100());
  CHECK(ws >= static_cast<std::size_t>(splits) * p.h * p.total_q * (p.dv + 1) * sizeof(float));
  // Without a workspace the plan refuses (it never allocates).
  CHECK_FALSE(plan_forward(p, h100(), nullptr, 0).ok());
  alignas(256) static unsigned char fake[1];  // never dereferenced on the host
  auto plan = plan_forward(p, h100(), fake, ws);
  REQUIRE(plan.ok());
  CHECK(plan->count == 2);
  CHECK(plan->num_splits == splits);
  CHECK(plan->launches[0].fwd.num_splits == splits);
  CHECK(plan->launches[0].grid[2] == static_cast<unsigned>(p.b * splits));
  CHECK(plan->launches[1].kind == KernelKind::combine);
  CHECK(plan->launches[1].combine.num_splits == splits);
  CHECK(plan->launches[1].params_size() == sizeof(CombineParams));
  // num_splits = 1 is deterministic: one launch and no workspace.
  p.num_splits = 1;
  CHECK(workspace_size(p, h100()) == 0);
  CHECK(plan_forward(p, h100(), nullptr, 0)->count == 1);
  // An explicit count is kept (clamped to the number of key blocks).
  p.num_splits = 3;
  CHECK(choose_num_splits(p, h100()) == 3);
  p.seqlen_k = 64;
  CHECK(choose_num_splits(p, h100()) == 1);
  // b * splits must fit grid.z (65535): an explicit count is clamped, not refused.
  p.seqlen_k = 32768;
  p.num_splits = 16;
  p.b = 8000;
  p.total_q = p.b;
  CHECK(choose_num_splits(p, h100()) == 8);
}

TEST_CASE("decode takes the 64-row tile, prefill the 128-row tile", "[plan]") {
  FwdParams p = decode_params(4096);
  p.num_splits = 1;
  auto plan = plan_forward(p, h100(), nullptr, 0);
  REQUIRE(plan.ok());
  CHECK(std::string(plan->launches[0].kernel_name) == "kernels_attn_fwd_hd128_m64_bf16");
  CHECK(plan->launches[0].block[0] == 128);
  p.seqlen_q = 17;  // 17 * 4 packed rows > 64
  p.total_q = p.b * p.seqlen_q;
  plan = plan_forward(p, h100(), nullptr, 0);
  REQUIRE(plan.ok());
  CHECK(std::string(plan->launches[0].kernel_name) == "kernels_attn_fwd_hd128_bf16");
  CHECK(plan->launches[0].grid[0] == 1);  // ceil(68 / 128)
  p.d = p.dv = 256;                       // one tile size only
  plan = plan_forward(p, h100(), nullptr, 0);
  REQUIRE(plan.ok());
  CHECK(std::string(plan->launches[0].kernel_name) == "kernels_attn_fwd_hd256_bf16");
}

TEST_CASE("big prefill does not split", "[plan]") {
  FwdParams p = decode_params(16384);
  p.page_table = nullptr;
  p.seqlen_q = 16384;
  p.b = 1;
  p.total_q = 16384;
  p.num_splits = 0;
  CHECK(choose_num_splits(p, h100()) == 1);
  CHECK(workspace_size(p, h100()) == 0);
}

TEST_CASE("generated manifest matches the kernel table and the params ABI", "[plan]") {
  std::ifstream in(std::string(KERNELS_GENERATED_DIR) + "/manifest.json");
  REQUIRE(in.good());
  const auto m = nlohmann::json::parse(in);
  CHECK(m.at("format_version") == 1);
  CHECK(m.at("family") == "fa3");
  CHECK(m.at("params_abi") == kParamsAbiVersion);
  CHECK(m.at("arch") == "sm90a");
  // The bundle carries the sm_90a TMA kernels; the portable ones are built into the loader.
  std::vector<const KernelInfo*> bundled;
  for (const KernelInfo& k : kernel_table())
    if (k.kind == KernelKind::forward_sm90) bundled.push_back(&k);
  REQUIRE(!bundled.empty());
  REQUIRE(m.at("kernels").size() == bundled.size());
  size_t i = 0;
  for (const KernelInfo* k : bundled) {
    const auto& e = m.at("kernels").at(i++);
    CHECK(e.at("name") == k->name);
    CHECK(e.at("kind") == "forward_sm90");
    CHECK(e.at("threads") == k->threads);
    CHECK(e.at("smem_bytes") == k->smem_bytes);
    CHECK(e.at("head_dim") == k->head_dim);
    CHECK(e.at("head_dim_v") == k->head_dim_v);
  }
}

namespace {

// Batched prefill: b=2, seqlen 1000, 16 heads over 4 kv heads, contiguous (b, s, h, d).
FwdParams prefill_params(int d) {
  FwdParams p = decode_params(1000);
  p.page_table = nullptr;
  p.page_size = 0;
  p.num_pages = 0;
  p.b = 2;
  p.h = 16;
  p.h_k = 4;
  p.d = p.dv = d;
  p.seqlen_q = 1000;
  p.total_q = 2000;
  p.q_row_stride = p.out_row_stride = 16LL * d;
  p.q_head_stride = p.out_head_stride = d;
  p.q_batch_stride = p.out_batch_stride = 1000LL * 16 * d;
  p.k_row_stride = p.v_row_stride = 4LL * d;
  p.k_head_stride = p.v_head_stride = d;
  p.k_batch_stride = p.v_batch_stride = 1000LL * 4 * d;
  return p;
}

}  // namespace

TEST_CASE("plan_forward_sm90 covers prefill on sm_90 and says why not otherwise", "[plan]") {
  const FwdParams p = prefill_params(128);
  auto plan = plan_forward_sm90(p, 1000, h100());
  REQUIRE(plan.ok());
  const KernelLaunch& l = plan->launches[0];
  CHECK(std::string(l.kernel_name) == "kernels_attn_fwd_sm90_hd128_bf16");
  CHECK(l.kind == KernelKind::forward_sm90);
  CHECK(l.params_size() == sizeof(TmaFwdParams));
  // Non-causal, short keys: persistent, ceil(1000/128) * 16 * 2 = 256 tiles over one block per SM.
  CHECK((l.grid[0] == 132 && l.grid[1] == 1 && l.grid[2] == 1));
  // Short keys run persistent under a causal mask too (snake order); long keys one block per tile.
  FwdParams causal = p;
  causal.is_causal = 1;
  CHECK(plan_forward_sm90(causal, 1000, h100())->launches[0].grid[0] == 132);
  FwdParams long_keys = p;
  long_keys.seqlen_k = 8192;
  CHECK(plan_forward_sm90(long_keys, 8192, h100())->launches[0].grid[0] == 256);
  // Long keys (one block per tile) take d128's 176-key tile, causal or not; short keys the
  // 128-key one, masked or not.
  CHECK(std::string(plan_forward_sm90(long_keys, 8192, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd128_m128n176_bf16");
  FwdParams long_causal = long_keys;
  long_causal.is_causal = 1;
  long_causal.seqlen_q = 8192;
  CHECK(std::string(plan_forward_sm90(long_causal, 8192, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd128_m128n176_bf16");
  CHECK(std::string(plan_forward_sm90(causal, 1000, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd128_bf16");
  CHECK(l.tma_fwd.fwd.num_splits == 1);
  // Batched: (d, seqlen, heads, batch) with the tensors' own strides in bytes.
  const TensorMapSpec& q = l.tensor_maps[0];
  CHECK((q.dims[0] == 128 && q.dims[1] == 1000 && q.dims[2] == 16 && q.dims[3] == 2));
  CHECK(
      (q.strides[0] == 16 * 128 * 2 && q.strides[1] == 256 && q.strides[2] == 1000 * 16 * 128 * 2));
  CHECK((q.box[0] == 64 && q.box[1] == 128));
  const TensorMapSpec& k = l.tensor_maps[1];
  CHECK((k.dims[1] == 1000 && k.dims[2] == 4 && k.dims[3] == 2 && k.box[1] == 128));

  auto why = [&](FwdParams x, int64_t k_rows = 1000, DeviceFacts dev = h100()) {
    auto r = plan_forward_sm90(x, k_rows, dev);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == kernels::ErrorCode::no_variant);
    return r.error().what;
  };
  CHECK(why(p, 1000, DeviceFacts{8, 0, 108, 166912}).find("sm_90a") != std::string::npos);
  CHECK(why(decode_params(4096)).find("64 query rows") != std::string::npos);
  // An empty cache (found by the PyTorch sweep, d96 batched with seqlen_k 0): no tensor map can
  // have a zero-sized dimension, so the built-in kernels take the call.
  FwdParams no_keys = p;
  no_keys.seqlen_k = 0;
  CHECK(why(no_keys, 0).find("no key rows") != std::string::npos);
  // seqused_k (a cache longer than what is used): covered, the kernel zeroes V past the end.
  FwdParams used = p;
  static const int32_t lens[2] = {1000, 900};
  used.seqused_k = lens;
  CHECK(plan_forward_sm90(used, 1000, h100()).ok());
  FwdParams split = p;
  split.num_splits = 3;
  CHECK(why(split).find("split") != std::string::npos);
  FwdParams short_q = p;
  short_q.seqlen_q = 16;
  short_q.total_q = 32;
  CHECK(why(short_q).find("64 query rows") != std::string::npos);
  FwdParams mla = p;
  mla.dv = 64;
  CHECK(why(mla).find("head dims 128 x 64") != std::string::npos);
  // q/k 192 with v 128 (MLA-style prefill) has its own kernel.
  FwdParams d192x128 = prefill_params(192);
  d192x128.dv = 128;
  d192x128.out_row_stride = 16LL * 128;
  d192x128.out_head_stride = 128;
  d192x128.out_batch_stride = 1000LL * 16 * 128;
  d192x128.v_row_stride = 4LL * 128;
  d192x128.v_head_stride = 128;
  d192x128.v_batch_stride = 1000LL * 4 * 128;
  auto plan_mla = plan_forward_sm90(d192x128, 1000, h100());
  REQUIRE(plan_mla.ok());
  CHECK(std::string(plan_mla->launches[0].kernel_name) == "kernels_attn_fwd_sm90_hd192x128_bf16");
  CHECK((plan_mla->launches[0].tensor_maps[1].dims[0] == 192 &&
         plan_mla->launches[0].tensor_maps[2].dims[0] == 128));
  // d = 96 runs padded to 128 columns in shared memory; its maps keep the tensors' 96.
  auto plan96 = plan_forward_sm90(prefill_params(96), 1000, h100());
  REQUIRE(plan96.ok());
  CHECK(std::string(plan96->launches[0].kernel_name) == "kernels_attn_fwd_sm90_hd96_bf16");
  CHECK((plan96->launches[0].tensor_maps[0].dims[0] == 96 &&
         plan96->launches[0].tensor_maps[2].dims[0] == 96));
  FwdParams d80 = prefill_params(96);
  d80.d = d80.dv = 80;
  CHECK(why(d80).find("head dim 80") != std::string::npos);
  CHECK(why(p, 999).find("k rows") != std::string::npos);  // k smaller than seqlen_k
  // d = 64 has two tiles: 192 rows, and 128 rows for masked calls of at most 1024 query rows.
  const FwdParams p64 = prefill_params(64);
  CHECK(std::string(plan_forward_sm90(p64, 1000, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd64_bf16");
  FwdParams p64c = p64;
  p64c.is_causal = 1;
  CHECK(std::string(plan_forward_sm90(p64c, 1000, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd64_m128n128_bf16");
  FwdParams p64w = p64;
  p64w.window_left = 128;
  CHECK(std::string(plan_forward_sm90(p64w, 1000, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd64_m128n128_bf16");
  // d = 192: 128x112, and 128x64 for short masked calls.
  FwdParams p192 = prefill_params(192);
  CHECK(std::string(plan_forward_sm90(p192, 1000, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd192_bf16");
  p192.window_left = 256;
  CHECK(std::string(plan_forward_sm90(p192, 1000, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd192_m128n64_bf16");
  // Paged K/V (chunked prefill over a paged cache): maps over (d, page slot, kv head, page), a
  // box of at most one page; the page size and the tile's key block must divide one another.
  static const int32_t table[2 * 8] = {};
  auto paged = [&](int d, int page_size) {
    FwdParams x = prefill_params(d);
    x.k_batch_stride = x.v_batch_stride = static_cast<int64_t>(page_size) * 4 * d;
    x.page_table = table;
    x.page_table_batch_stride = 8;
    x.page_size = page_size;
    x.num_pages = 16;
    x.seqlen_k = 8 * page_size;
    x.seqused_k = lens;
    return x;
  };
  for (int page : {16, 64, 128, 256}) {
    auto r = plan_forward_sm90(paged(192, page), page, h100());
    REQUIRE(r.ok());
    const TensorMapSpec& pk = r->launches[0].tensor_maps[1];
    CHECK((pk.dims[1] == static_cast<uint64_t>(page) && pk.dims[2] == 4 && pk.dims[3] == 16));
    CHECK(pk.strides[2] == static_cast<uint64_t>(page) * 4 * 192 * 2);
    CHECK(pk.box[1] == static_cast<uint32_t>(std::min(page, page == 16 ? 112 : 64)));
    CHECK(r->launches[0].tensor_maps[2].box[1] == pk.box[1]);
  }
  // d = 192 pages of 64 rows: the 128x64 tile even unmasked (112 and 64 do not divide).
  CHECK(std::string(plan_forward_sm90(paged(192, 64), 64, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd192_m128n64_bf16");
  // Pages TMA cannot copy whole (fewer than 16 rows, or sizes that do not divide the key block
  // or its multiples): the kernel's producer gathers rows, at d = 256 on the 64-key tile; below
  // it the built-in kernels are faster.
  for (int page : {1, 8, 24}) {
    auto r = plan_forward_sm90(paged(256, page), page, h100());
    REQUIRE(r.ok());
    CHECK(std::string(r->launches[0].kernel_name) == "kernels_attn_fwd_sm90_hd256_m128n64_bf16");
    CHECK_FALSE(sm90_pages_by_tma(page, 64));
    CHECK(sm90_gathers_pages(256, 64));
    CHECK_FALSE(sm90_gathers_pages(256, 80));
    CHECK(why(paged(128, page), page).find("gathered row by row") != std::string::npos);
    CHECK(why(paged(192, page), page).find("gathered row by row") != std::string::npos);
  }
  CHECK(sm90_pages_by_tma(16, 128));
  CHECK(sm90_pages_by_tma(256, 128));
  CHECK_FALSE(sm90_pages_by_tma(48, 128));
  CHECK(why(paged(128, 64), 32).find("k rows") != std::string::npos);  // k_rows is the page size
  // Pages under 64 rows at d <= 128 go to the built-in kernels (faster there, measured).
  CHECK(why(paged(128, 16), 16).find("built-in kernels are faster") != std::string::npos);
  CHECK(why(paged(64, 32), 32).find("built-in kernels are faster") != std::string::npos);
  CHECK(plan_forward_sm90(paged(128, 64), 64, h100()).ok());
  CHECK(plan_forward_sm90(paged(256, 16), 16, h100()).ok());
  // d = 256: 128x80, and 128x64 for short masked calls.
  FwdParams p256 = prefill_params(256);
  CHECK(std::string(plan_forward_sm90(p256, 1000, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd256_bf16");
  p256.is_causal = 1;
  CHECK(std::string(plan_forward_sm90(p256, 1000, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd256_m128n64_bf16");
  p256.seqlen_q = 2000;  // longer: the larger tile again
  p256.total_q = 2 * 2000;
  CHECK(std::string(plan_forward_sm90(p256, 2000, h100())->launches[0].kernel_name) ==
        "kernels_attn_fwd_sm90_hd256_bf16");
  FwdParams odd_out = p;  // even (the portable kernels' rule) but not 16-byte groups
  odd_out.out_row_stride = 16 * 128 + 2;
  CHECK(why(odd_out).find("out strides") != std::string::npos);
  long_keys.is_causal = 1;
  CHECK(plan_forward_sm90(long_keys, 8192, h100())->launches[0].grid[0] == 256);
}

TEST_CASE("sm90 tensor maps of varlen q/k are one batch of all tokens", "[plan]") {
  FwdParams p = prefill_params(64);
  static const int32_t cu[3] = {0, 700, 1300};
  p.cu_seqlens_q = cu;
  p.cu_seqlens_k = cu;
  p.b = 2;
  p.seqlen_q = 700;
  p.total_q = 1300;
  const auto maps = sm90_tensor_maps(p, 1300, 192, 128);
  for (const TensorMapSpec& m : maps) {
    CHECK(m.dims[1] == 1300);
    CHECK(m.dims[3] == 1);
    CHECK(m.strides[2] % 16 == 0);  // unused for one batch, still a valid stride
    CHECK(m.strides[2] > 0);
  }
  CHECK(maps[0].box[1] == 192);
  CHECK(maps[1].box[1] == 128);
  CHECK(maps[0].dims[2] == 16);
  CHECK(maps[1].dims[2] == 4);
}

TEST_CASE("covers: the kernel table is the one answer to which head dims run", "[plan]") {
  for (int d : {64, 96, 128, 192, 256, 40, 80, 136}) CHECK(covers(d, d, DType::bf16).ok());
  CHECK(covers(192, 128, DType::fp16).ok());  // the MLA-style pair the table has
  auto r = covers(64, 512, DType::bf16);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().what.find("v head dim 512") != std::string::npos);
  r = covers(128, 64, DType::bf16);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().hint.find("192x128") != std::string::npos);
  CHECK_FALSE(covers(264, 264, DType::bf16).ok());
  CHECK_FALSE(covers(100, 100, DType::bf16).ok());  // not a multiple of 8
}
