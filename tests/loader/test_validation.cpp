// Validation before launch (sglang-fa3-api.md §8): one test per rule, each starting from a valid
// call, breaking exactly one thing, and checking the rule, the argument named, and that nothing
// was launched.
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <limits>

#include "loader/harness.h"

using namespace kernels;
using namespace kernels::loader;
using namespace kernels::loader::testing;

namespace {

struct Outcome {
  bool ok = false;
  Error error;
  std::size_t launches = 0;
};

Outcome run_varlen(const std::function<void(kl_varlen_args&)>& breaker, int d = 128) {
  Harness h;
  auto l = h.make();
  REQUIRE(l.ok());
  auto a = valid_varlen(d);
  breaker(a);
  auto r = (*l)->flash_attn_varlen_func(a, fake_stream(0));
  Outcome o;
  o.ok = r.ok();
  if (!r) o.error = r.error();
  o.launches = h.driver->launches().size();
  return o;
}

Outcome run_kvcache(const std::function<void(kl_kvcache_args&)>& breaker, int d = 128) {
  Harness h;
  auto l = h.make();
  REQUIRE(l.ok());
  auto a = valid_kvcache_paged(d);
  breaker(a);
  auto r = (*l)->flash_attn_with_kvcache(a, fake_stream(0));
  Outcome o;
  o.ok = r.ok();
  if (!r) o.error = r.error();
  o.launches = h.driver->launches().size();
  return o;
}

void expect(const Outcome& o, const std::string& rule, const std::string& argument) {
  INFO(o.error.message());
  REQUIRE_FALSE(o.ok);
  CHECK(o.error.code == ErrorCode::usage);
  CHECK(o.error.what.find("[" + rule + "]") != std::string::npos);
  CHECK(o.error.object.find(argument) != std::string::npos);
  CHECK(o.launches == 0);
}

}  // namespace

TEST_CASE("valid calls pass validation and launch", "[loader][validation]") {
  CHECK(run_varlen([](kl_varlen_args&) {}).launches == 1);
  CHECK(run_kvcache([](kl_kvcache_args&) {}).launches == 1);
  // Batched q over a contiguous cache.
  CHECK(run_kvcache([](kl_kvcache_args& a) {
          a.page_table = {};
          a.k_cache = tensor(fake_ptr(12), KL_DTYPE_BFLOAT16, {2, 64, 2, 128});
          a.v_cache = tensor(fake_ptr(13), KL_DTYPE_BFLOAT16, {2, 64, 2, 128});
        }).launches == 1);
  // Paged varlen (FA4's form): page_table + seqused_k, no cu_seqlens_k.
  CHECK(run_varlen([](kl_varlen_args& a) {
          a.cu_seqlens_k = {};
          a.k = tensor(fake_ptr(2), KL_DTYPE_BFLOAT16, {16, 16, 2, 128});
          a.v = tensor(fake_ptr(3), KL_DTYPE_BFLOAT16, {16, 16, 2, 128});
          a.page_table = tensor(fake_ptr(8), KL_DTYPE_INT32, {2, 4});
          a.seqused_k = tensor(fake_ptr(9), KL_DTYPE_INT32, {2});
        }).launches == 1);
  // Empty batch: nothing to do, nothing launched, no error.
  auto empty = run_varlen([](kl_varlen_args& a) {
    a.q.shape[0] = 0;
    a.out.shape[0] = 0;
    a.softmax_lse = {};
    a.max_seqlen_q = 0;
  });
  CHECK(empty.ok);
  CHECK(empty.launches == 0);
}

TEST_CASE("rule struct_size: an args struct from another ABI", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.struct_size -= 8; }), "struct_size", "args");
  expect(run_kvcache([](kl_kvcache_args& a) { a.struct_size = 0; }), "struct_size", "args");
}

TEST_CASE("rule ver: only 3 and 4", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.ver = 2; }), "ver", "ver");
}

TEST_CASE("rule required: q, k, v, out, cu_seqlens", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.q = {}; }), "required", "q");
  expect(run_varlen([](kl_varlen_args& a) { a.out = {}; }), "required", "out");
  expect(run_varlen([](kl_varlen_args& a) { a.cu_seqlens_q = {}; }), "required", "cu_seqlens_q");
  expect(run_varlen([](kl_varlen_args& a) { a.cu_seqlens_k = {}; }), "required", "cu_seqlens_k");
  expect(run_kvcache([](kl_kvcache_args& a) { a.v_cache = {}; }), "required", "v_cache");
}

TEST_CASE("rule device: every tensor on the stream's device, none on the host",
          "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.k.device = 1; }), "device", "k");
  expect(run_varlen([](kl_varlen_args& a) { a.cu_seqlens_q.device = -1; }), "device",
         "cu_seqlens_q");
  expect(run_kvcache([](kl_kvcache_args& a) { a.page_table.device = -1; }), "device", "page_table");
}

TEST_CASE("rule dtype: q is float16 or bfloat16 (fp8 refused by these kernels)",
          "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.q.dtype = KL_DTYPE_FLOAT32; }), "dtype", "q");
  auto fp8 = run_varlen(
      [](kl_varlen_args& a) { a.q.dtype = a.k.dtype = a.v.dtype = KL_DTYPE_FLOAT8_E4M3; });
  expect(fp8, "dtype", "q");
  CHECK(fp8.error.what.find("float8") != std::string::npos);
}

TEST_CASE("rule dtype_mismatch: k and v have q's dtype", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.k.dtype = KL_DTYPE_FLOAT16; }), "dtype_mismatch",
         "k");
  expect(run_kvcache([](kl_kvcache_args& a) { a.v_cache.dtype = KL_DTYPE_FLOAT16; }),
         "dtype_mismatch", "v_cache");
}

TEST_CASE("rule out_dtype: out has q's dtype", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.out.dtype = KL_DTYPE_FLOAT32; }), "out_dtype", "out");
}

TEST_CASE("rule index_dtype: index tensors are int32", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.cu_seqlens_k.dtype = KL_DTYPE_INT64; }),
         "index_dtype", "cu_seqlens_k");
  expect(run_kvcache([](kl_kvcache_args& a) { a.page_table.dtype = KL_DTYPE_INT64; }),
         "index_dtype", "page_table");
  expect(run_kvcache([](kl_kvcache_args& a) { a.cache_seqlens.dtype = KL_DTYPE_INT64; }),
         "index_dtype", "cache_seqlens");
}

TEST_CASE("rule lse_dtype and sinks_dtype and descale_dtype: float32", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.softmax_lse.dtype = KL_DTYPE_BFLOAT16; }),
         "lse_dtype", "softmax_lse");
  expect(run_varlen(
             [](kl_varlen_args& a) { a.sinks = tensor(fake_ptr(20), KL_DTYPE_BFLOAT16, {8}); }),
         "sinks_dtype", "sinks");
  expect(run_varlen([](kl_varlen_args& a) {
           a.k_descale = tensor(fake_ptr(21), KL_DTYPE_BFLOAT16, {2, 2});
         }),
         "descale_dtype", "k_descale");
}

TEST_CASE("rule rank: varlen q is 3-D, batched q 4-D, paged caches 4-D", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) {
           a.q = tensor(fake_ptr(1), KL_DTYPE_BFLOAT16, {2, 32, 8, 128});
         }),
         "rank", "q");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.q = tensor(fake_ptr(11), KL_DTYPE_BFLOAT16, {2, 8, 128});
         }),
         "rank", "q");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.k_cache = tensor(fake_ptr(12), KL_DTYPE_BFLOAT16, {256, 2, 128});
         }),
         "rank", "k_cache");
}

TEST_CASE("rule last_dim_stride: q, k, v, out contiguous in the last dimension",
          "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.q.stride[2] = 2; }), "last_dim_stride", "q");
  expect(run_varlen([](kl_varlen_args& a) { a.v.stride[2] = 2; }), "last_dim_stride", "v");
  expect(run_varlen([](kl_varlen_args& a) { a.out.stride[2] = 2; }), "last_dim_stride", "out");
  expect(run_kvcache([](kl_kvcache_args& a) { a.k_cache.stride[3] = 2; }), "last_dim_stride",
         "k_cache");
}

// Regression (issue 12, defect 13): zero and negative strides on q/k/v/out reached the launch.
TEST_CASE("rule stride: q, k, v, out strides are >= 1 and their span fits in int64",
          "[loader][validation]") {
  for (std::int64_t bad :
       {std::int64_t{0}, std::int64_t{-1}, std::numeric_limits<std::int64_t>::min()}) {
    INFO("stride " << bad);
    expect(run_varlen([&](kl_varlen_args& a) { a.q.stride[0] = bad; }), "stride", "q");
    expect(run_varlen([&](kl_varlen_args& a) { a.k.stride[1] = bad; }), "stride", "k");
    expect(run_varlen([&](kl_varlen_args& a) { a.v.stride[0] = bad; }), "stride", "v");
    expect(run_varlen([&](kl_varlen_args& a) { a.out.stride[1] = bad; }), "stride", "out");
    expect(run_kvcache([&](kl_kvcache_args& a) { a.k_cache.stride[0] = bad; }), "stride",
           "k_cache");
    expect(run_kvcache([&](kl_kvcache_args& a) { a.v_cache.stride[2] = bad; }), "stride",
           "v_cache");
    expect(run_kvcache([&](kl_kvcache_args& a) { a.out.stride[2] = bad; }), "stride", "out");
  }
  expect(run_varlen([](kl_varlen_args& a) { a.q.stride[0] = std::int64_t{1} << 62; }), "stride",
         "q");
  // A dimension of extent 1 is never stepped over: its stride does not matter (torch gives any).
  CHECK(run_kvcache([](kl_kvcache_args& a) { a.q.stride[1] = 0; }).launches == 1);
}

TEST_CASE("rule contiguous: 1-D index tensors, LSE and sinks are contiguous",
          "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.cu_seqlens_q.stride[0] = 2; }), "contiguous",
         "cu_seqlens_q");
  expect(run_varlen([](kl_varlen_args& a) { a.softmax_lse.stride[0] = 1; }), "contiguous",
         "softmax_lse");
}

TEST_CASE("rule index_contiguous: page_table's last dimension is contiguous",
          "[loader][validation]") {
  expect(run_kvcache([](kl_kvcache_args& a) { a.page_table.stride[1] = 2; }), "index_contiguous",
         "page_table");
}

TEST_CASE("rule shape: extents agree across tensors", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.out.shape[1] = 4; }), "shape", "out");
  expect(run_varlen([](kl_varlen_args& a) { a.cu_seqlens_k.shape[0] = 4; }), "shape",
         "cu_seqlens_k");
  expect(run_varlen([](kl_varlen_args& a) {
           a.k.shape[2] = 64;
           a.k.stride[1] = 64;
           a.k.stride[0] = 128;
         }),
         "shape", "k");
  expect(run_varlen([](kl_varlen_args& a) { a.v.shape[0] = 63; }), "shape", "v");
  expect(run_varlen([](kl_varlen_args& a) { a.softmax_lse.shape[1] = 65; }), "shape",
         "softmax_lse");
  expect(run_varlen(
             [](kl_varlen_args& a) { a.sinks = tensor(fake_ptr(20), KL_DTYPE_FLOAT32, {2}); }),
         "shape", "sinks");
  expect(run_kvcache([](kl_kvcache_args& a) { a.cache_seqlens.shape[0] = 3; }), "shape",
         "cache_seqlens");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.softmax_lse = tensor(fake_ptr(17), KL_DTYPE_FLOAT32, {8, 2});
         }),
         "shape", "softmax_lse");
  expect(run_varlen([](kl_varlen_args& a) { a.q.shape[0] = -1; }), "shape", "q");
}

TEST_CASE("rule gqa_ratio: h_k divides h", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) {
           a.k = tensor(fake_ptr(2), KL_DTYPE_BFLOAT16, {64, 3, 128});
           a.v = tensor(fake_ptr(3), KL_DTYPE_BFLOAT16, {64, 3, 128});
         }),
         "gqa_ratio", "k");
}

TEST_CASE("rule head_dim_max: head dim at most 256", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args&) {}, 320), "head_dim_max", "q");
}

TEST_CASE("rule head_dim_multiple: head dims are multiples of 8", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args&) {}, 100), "head_dim_multiple", "q");
  expect(run_varlen([](kl_varlen_args& a) {
           a.v = tensor(fake_ptr(3), KL_DTYPE_BFLOAT16, {64, 2, 100});
           a.out = tensor(fake_ptr(4), KL_DTYPE_BFLOAT16, {64, 8, 100});
         }),
         "head_dim_multiple", "v");
}

TEST_CASE("rule head_dim_v: dv != d only for the MLA shapes", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) {
           a.v = tensor(fake_ptr(3), KL_DTYPE_BFLOAT16, {64, 2, 64});
           a.out = tensor(fake_ptr(4), KL_DTYPE_BFLOAT16, {64, 8, 64});
         }),
         "head_dim_v", "v");
  // 192 x 128 (DeepSeek prefill) is allowed and launches.
  CHECK(run_varlen(
            [](kl_varlen_args& a) {
              a.v = tensor(fake_ptr(3), KL_DTYPE_BFLOAT16, {64, 2, 128});
              a.out = tensor(fake_ptr(4), KL_DTYPE_BFLOAT16, {64, 8, 128});
            },
            192)
            .launches == 1);
}

TEST_CASE("rule missing_companion: arguments that need another", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.max_seqlen_q = -1; }), "missing_companion",
         "max_seqlen_q");
  expect(run_varlen([](kl_varlen_args& a) { a.max_seqlen_k = -1; }), "missing_companion",
         "max_seqlen_k");
  expect(run_kvcache([](kl_kvcache_args& a) { a.cache_seqlens = {}; }), "missing_companion",
         "cache_seqlens");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.k = tensor(fake_ptr(30), KL_DTYPE_BFLOAT16, {2, 1, 2, 128});
         }),
         "missing_companion", "v");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.rotary_cos = tensor(fake_ptr(31), KL_DTYPE_BFLOAT16, {64, 32});
         }),
         "missing_companion", "rotary_sin");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.rotary_cos = tensor(fake_ptr(31), KL_DTYPE_BFLOAT16, {64, 32});
           a.rotary_sin = tensor(fake_ptr(32), KL_DTYPE_BFLOAT16, {64, 32});
         }),
         "missing_companion", "k");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.q = tensor(fake_ptr(11), KL_DTYPE_BFLOAT16, {2, 8, 128});
           a.out = tensor(fake_ptr(16), KL_DTYPE_BFLOAT16, {2, 8, 128});
           a.cu_seqlens_q = tensor(fake_ptr(18), KL_DTYPE_INT32, {3});
         }),
         "missing_companion", "max_seqlen_q");
  expect(run_varlen([](kl_varlen_args& a) {
           a.cu_seqlens_k = {};
           a.k = tensor(fake_ptr(2), KL_DTYPE_BFLOAT16, {16, 16, 2, 128});
           a.v = tensor(fake_ptr(3), KL_DTYPE_BFLOAT16, {16, 16, 2, 128});
           a.page_table = tensor(fake_ptr(8), KL_DTYPE_INT32, {2, 4});
         }),
         "missing_companion", "seqused_k");
}

TEST_CASE("rule mutually_exclusive: page_table with cu_seqlens_k or cache_batch_idx",
          "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) {
           a.page_table = tensor(fake_ptr(8), KL_DTYPE_INT32, {2, 4});
         }),
         "mutually_exclusive", "page_table");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.cache_batch_idx = tensor(fake_ptr(33), KL_DTYPE_INT32, {2});
         }),
         "mutually_exclusive", "cache_batch_idx");
}

TEST_CASE("rule batch_mismatch: page_table rows / cache batch equal the query batch",
          "[loader][validation]") {
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.page_table = tensor(fake_ptr(14), KL_DTYPE_INT32, {3, 4});
         }),
         "batch_mismatch", "page_table");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.page_table = {};
           a.k_cache = tensor(fake_ptr(12), KL_DTYPE_BFLOAT16, {3, 64, 2, 128});
           a.v_cache = tensor(fake_ptr(13), KL_DTYPE_BFLOAT16, {3, 64, 2, 128});
         }),
         "batch_mismatch", "k_cache");
}

TEST_CASE("rule value_range: scalars inside their ranges", "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) { a.num_splits = -1; }), "value_range", "num_splits");
  expect(run_varlen([](kl_varlen_args& a) { a.num_splits = 257; }), "value_range", "num_splits");
  expect(run_varlen([](kl_varlen_args& a) { a.softcap = -1.0f; }), "value_range", "softcap");
  expect(run_varlen([](kl_varlen_args& a) { a.window_left = -2; }), "value_range", "window_size");
  expect(run_varlen([](kl_varlen_args& a) { a.attention_chunk = -1; }), "value_range",
         "attention_chunk");
  expect(run_varlen([](kl_varlen_args& a) { a.sm_margin = 132; }), "value_range", "sm_margin");
  expect(run_varlen([](kl_varlen_args& a) { a.softmax_scale = -0.5; }), "value_range",
         "softmax_scale");
  expect(run_varlen([](kl_varlen_args& a) { a.max_seqlen_q = 65; }), "value_range", "max_seqlen_q");
  expect(run_varlen([](kl_varlen_args& a) { a.max_seqlen_k = 65; }), "value_range", "max_seqlen_k");
  expect(run_varlen([](kl_varlen_args& a) { a.pack_gqa = 2; }), "value_range", "pack_gqa");
}

namespace {

// A tensor with explicit strides: harness' tensor() computes contiguous strides, and their
// running product would itself overflow for the extents below.
kl_tensor strided(void* data, int dtype, std::vector<std::int64_t> shape,
                  std::vector<std::int64_t> strides) {
  kl_tensor t = tensor(data, dtype, {1});
  t.ndim = static_cast<std::int32_t>(shape.size());
  for (int i = 0; i < t.ndim; ++i) {
    t.shape[i] = shape[i];
    t.stride[i] = strides[i];
  }
  return t;
}

}  // namespace

// Row counts formed as a product of two extents used to wrap: 2^24 pages per sequence of 2^40
// rows is 2^64 = 0 rows, which passed the int32 check and launched; a batched q of 2^32
// sequences of 2^32 rows had 0 rows, so the call returned success without running.
TEST_CASE("rule value_range: row counts that overflow int64 are refused, not wrapped",
          "[loader][validation]") {
  constexpr std::int64_t k40 = std::int64_t{1} << 40, k32 = std::int64_t{1} << 32;
  expect(run_varlen([&](kl_varlen_args& a) {
           a.cu_seqlens_k = {};
           a.k = tensor(fake_ptr(2), KL_DTYPE_BFLOAT16, {16, k40, 2, 128});
           a.v = tensor(fake_ptr(3), KL_DTYPE_BFLOAT16, {16, k40, 2, 128});
           a.page_table = tensor(fake_ptr(8), KL_DTYPE_INT32, {2, std::int64_t{1} << 24});
           a.seqused_k = tensor(fake_ptr(9), KL_DTYPE_INT32, {2});
         }),
         "value_range", "max_seqlen_k");
  expect(run_kvcache([&](kl_kvcache_args& a) {
           a.k_cache = tensor(fake_ptr(12), KL_DTYPE_BFLOAT16, {16, k40, 2, 128});
           a.v_cache = tensor(fake_ptr(13), KL_DTYPE_BFLOAT16, {16, k40, 2, 128});
           a.page_table = tensor(fake_ptr(14), KL_DTYPE_INT32, {2, std::int64_t{1} << 24});
         }),
         "value_range", "k_cache");
  expect(run_kvcache([&](kl_kvcache_args& a) {
           // Strides >= 1 whose span fits in int64: only the row count overflows.
           a.q = strided(fake_ptr(11), KL_DTYPE_BFLOAT16, {k32, k32, 8, 128},
                         {std::int64_t{1} << 20, 1, 128, 1});
           a.out = strided(fake_ptr(16), KL_DTYPE_BFLOAT16, {k32, k32, 8, 128},
                           {std::int64_t{1} << 20, 1, 128, 1});
           a.page_table = tensor(fake_ptr(14), KL_DTYPE_INT32, {k32, 4});
           a.cache_seqlens = tensor(fake_ptr(15), KL_DTYPE_INT32, {k32});
           a.softmax_lse = {};
         }),
         "value_range", "q");
}

TEST_CASE("rule unsupported: features these kernels lack are refused, never ignored",
          "[loader][validation]") {
  expect(run_varlen([](kl_varlen_args& a) {
           a.qv = tensor(fake_ptr(40), KL_DTYPE_BFLOAT16, {64, 8, 512});
         }),
         "unsupported", "qv");
  expect(run_varlen(
             [](kl_varlen_args& a) { a.seqused_q = tensor(fake_ptr(41), KL_DTYPE_INT32, {2}); }),
         "unsupported", "seqused_q");
  expect(run_varlen([](kl_varlen_args& a) { a.attention_chunk = 128; }), "unsupported",
         "attention_chunk");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.k = tensor(fake_ptr(30), KL_DTYPE_BFLOAT16, {2, 1, 2, 128});
           a.v = tensor(fake_ptr(34), KL_DTYPE_BFLOAT16, {2, 1, 2, 128});
         }),
         "unsupported", "k");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.page_table = {};
           a.k_cache = tensor(fake_ptr(12), KL_DTYPE_BFLOAT16, {2, 64, 2, 128});
           a.v_cache = tensor(fake_ptr(13), KL_DTYPE_BFLOAT16, {2, 64, 2, 128});
           a.cache_leftpad = tensor(fake_ptr(35), KL_DTYPE_INT32, {2});
         }),
         "unsupported", "cache_leftpad");
  expect(run_kvcache([](kl_kvcache_args& a) {
           a.scheduler_metadata = tensor(fake_ptr(36), KL_DTYPE_INT32, {16});
         }),
         "unsupported", "scheduler_metadata");
}

TEST_CASE("shapes the kernels do not cover are refused by the plan before launch",
          "[loader][validation]") {
  // d <= 64 with dv 512 is FA3-legal (absorbed MLA) but has no kernel here.
  auto o = run_varlen(
      [](kl_varlen_args& a) {
        a.v = tensor(fake_ptr(3), KL_DTYPE_BFLOAT16, {64, 2, 512});
        a.out = tensor(fake_ptr(4), KL_DTYPE_BFLOAT16, {64, 8, 512});
      },
      64);
  REQUIRE_FALSE(o.ok);
  CHECK(o.error.code == ErrorCode::usage);
  CHECK(o.launches == 0);
  // Misaligned data pointer.
  auto m = run_varlen([](kl_varlen_args& a) { a.q.data = static_cast<char*>(a.q.data) + 2; });
  REQUIRE_FALSE(m.ok);
  CHECK(m.launches == 0);
}

TEST_CASE("workspace-size queries validate too", "[loader][validation]") {
  Harness h;
  auto l = h.make();
  REQUIRE(l.ok());
  auto a = valid_varlen();
  a.k.dtype = KL_DTYPE_FLOAT16;
  auto r = (*l)->varlen_workspace_size(a, fake_stream(0));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().what.find("[dtype_mismatch]") != std::string::npos);
}

namespace {

std::vector<std::uint8_t> ints(std::vector<std::int32_t> v) {
  std::vector<std::uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// A loader with the debug value checks on, and the valid varlen / paged calls' index tensors
// given (fake) device contents.
struct ValueHarness {
  Harness h;
  std::unique_ptr<Loader> loader;
  ValueHarness() {
    auto o = h.options();
    o.debug_checks = true;
    auto l = Loader::create(o);
    REQUIRE(l.ok());
    loader = std::move(*l);
  }
};

}  // namespace

TEST_CASE("debug value checks: valid index values pass and launch", "[loader][validation]") {
  ValueHarness v;
  auto a = valid_varlen();
  v.h.driver->set_memory(a.cu_seqlens_q.data, ints({0, 24, 64}));
  v.h.driver->set_memory(a.cu_seqlens_k.data, ints({0, 30, 64}));
  REQUIRE(v.loader->flash_attn_varlen_func(a, fake_stream(0)).ok());
  CHECK(v.h.driver->launches().size() == 1);
  CHECK(v.h.driver->host_copies() == 2);
  auto k = valid_kvcache_paged();
  v.h.driver->set_memory(k.cache_seqlens.data, ints({64, 17}));
  v.h.driver->set_memory(k.page_table.data, ints({3, 1, 4, 15, 9, 2, 6, 5}));
  REQUIRE(v.loader->flash_attn_with_kvcache(k, fake_stream(0)).ok());
  CHECK(v.h.driver->launches().size() == 2);
}

TEST_CASE("a call's check_values overrides the loader's debug checks either way",
          "[loader][validation]") {
  auto bad_cu = [](Harness& h, const kl_varlen_args& a) {
    h.driver->set_memory(a.cu_seqlens_q.data, ints({0, 40, 30}));  // decreasing
    h.driver->set_memory(a.cu_seqlens_k.data, ints({0, 30, 64}));
  };
  SECTION("checks off in the loader, on for the call") {
    Harness h;
    auto l = Loader::create(h.options());
    REQUIRE(l.ok());
    auto a = valid_varlen();
    bad_cu(h, a);
    REQUIRE((*l)->flash_attn_varlen_func(a, fake_stream(0)).ok());  // -1: the loader's (off)
    CHECK(h.driver->host_copies() == 0);
    a.check_values = 1;
    auto r = (*l)->flash_attn_varlen_func(a, fake_stream(0));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().what.find("non-decreasing") != std::string::npos);
  }
  SECTION("checks on in the loader, off for the call") {
    ValueHarness v;
    auto a = valid_varlen();
    bad_cu(v.h, a);
    REQUIRE_FALSE(v.loader->flash_attn_varlen_func(a, fake_stream(0)).ok());
    a.check_values = 0;
    CHECK(v.loader->flash_attn_varlen_func(a, fake_stream(0)).ok());
  }
}

TEST_CASE("debug value checks: bad cu_seqlens, cache_seqlens and page ids are refused",
          "[loader][validation]") {
  ValueHarness v;
  auto a = valid_varlen();
  SECTION("decreasing cu_seqlens_q") {
    v.h.driver->set_memory(a.cu_seqlens_q.data, ints({0, 40, 30}));
    auto r = v.loader->flash_attn_varlen_func(a, fake_stream(0));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().what.find("[values]") != std::string::npos);
    CHECK(r.error().object.find("cu_seqlens_q") != std::string::npos);
  }
  SECTION("cu_seqlens_q not ending at total_q (SGLang's padded tail)") {
    v.h.driver->set_memory(a.cu_seqlens_q.data, ints({0, 24, 60}));
    v.h.driver->set_memory(a.cu_seqlens_k.data, ints({0, 30, 64}));
    auto r = v.loader->flash_attn_varlen_func(a, fake_stream(0));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().what.find("ends at 60") != std::string::npos);
  }
  SECTION("a sequence longer than max_seqlen_k") {
    v.h.driver->set_memory(a.cu_seqlens_q.data, ints({0, 24, 64}));
    v.h.driver->set_memory(a.cu_seqlens_k.data, ints({0, 10, 64}));  // 54 > 40
    auto r = v.loader->flash_attn_varlen_func(a, fake_stream(0));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().object.find("cu_seqlens_k") != std::string::npos);
  }
  SECTION("cache_seqlens beyond the cache") {
    auto k = valid_kvcache_paged();
    v.h.driver->set_memory(k.cache_seqlens.data, ints({65, 1}));
    auto r = v.loader->flash_attn_with_kvcache(k, fake_stream(0));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().object.find("cache_seqlens") != std::string::npos);
  }
  SECTION("a page id outside num_pages") {
    auto k = valid_kvcache_paged();
    v.h.driver->set_memory(k.cache_seqlens.data, ints({20, 1}));
    v.h.driver->set_memory(k.page_table.data, ints({0, 16, 99, 99, 7, 99, 99, 99}));
    auto r = v.loader->flash_attn_with_kvcache(k, fake_stream(0));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().what.find("page_table[0, 1] = 16") != std::string::npos);
  }
  CHECK(v.h.driver->launches().empty());
}

TEST_CASE("without debug checks no index value is read (no synchronisation)",
          "[loader][validation]") {
  Harness h;
  auto l = h.make();
  REQUIRE(l.ok());
  auto a = valid_varlen();
  REQUIRE((*l)->flash_attn_varlen_func(a, fake_stream(0)).ok());
  CHECK(h.driver->host_copies() == 0);
}

TEST_CASE("every query sequence empty: an empty LSE is accepted and nothing launches, as FA3",
          "[loader][validation]") {
  // total_q = 0: q/out (0, h, d), LSE (h, 0) with torch's strides for it, (1, 1).
  auto o = run_varlen([](kl_varlen_args& a) {
    a.q = tensor(fake_ptr(1), KL_DTYPE_BFLOAT16, {0, 8, 128});
    a.out = tensor(fake_ptr(4), KL_DTYPE_BFLOAT16, {0, 8, 128});
    a.softmax_lse = tensor(fake_ptr(7), KL_DTYPE_FLOAT32, {8, 0});
    a.softmax_lse.stride[0] = 1;
    a.softmax_lse.stride[1] = 1;
    a.max_seqlen_q = 0;
  });
  INFO(o.error.message());
  CHECK(o.ok);
  CHECK(o.launches == 0);
}

TEST_CASE("rule head_dim_covered: FA3-legal head dims without a kernel are refused in validation",
          "[loader][validation]") {
  // d <= 64 with dv 512 is FA3-legal (absorbed MLA); the launch plan's table has no such kernel.
  auto o = run_varlen(
      [](kl_varlen_args& a) {
        a.v = tensor(fake_ptr(3), KL_DTYPE_BFLOAT16, {64, 2, 512});
        a.out = tensor(fake_ptr(4), KL_DTYPE_BFLOAT16, {64, 8, 512});
      },
      64);
  expect(o, "head_dim_covered", "v");
}
