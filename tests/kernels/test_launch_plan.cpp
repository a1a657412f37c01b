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
  p.d = p.dv = 256;  // one tile size only
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
  REQUIRE(m.at("kernels").size() == kernel_table().size());
  size_t i = 0;
  for (const KernelInfo& k : kernel_table()) {
    const auto& e = m.at("kernels").at(i++);
    CHECK(e.at("name") == k.name);
    CHECK(e.at("threads") == k.threads);
    CHECK(e.at("smem_bytes") == k.smem_bytes);
    CHECK(e.at("head_dim") == k.head_dim);
    CHECK(e.at("head_dim_v") == k.head_dim_v);
  }
}
