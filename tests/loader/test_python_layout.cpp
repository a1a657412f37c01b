// The Python package mirrors the C ABI's structs with ctypes. A field out of place there would
// hand the library a wrong pointer, so every field's offset and every struct's size is compared
// with the C header's, on CI (needs python3 only; torch is imported lazily by the package).
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdio>
#include <map>
#include <string>

#include "kernels/kernels_loader.h"
#include "support/skip.h"

namespace {

using Layout = std::map<std::string, std::size_t>;  // "struct.field" and "struct" -> bytes

#define F(S, f) \
  { #S "." #f, offsetof(S, f) }

Layout c_layout() {
  return {
      {"kl_tensor", sizeof(kl_tensor)},
      {"kl_varlen_args", sizeof(kl_varlen_args)},
      {"kl_kvcache_args", sizeof(kl_kvcache_args)},
      {"kl_options", sizeof(kl_options)},
      {"kl_source_info", sizeof(kl_source_info)},
      F(kl_tensor, data),
      F(kl_tensor, dtype),
      F(kl_tensor, ndim),
      F(kl_tensor, shape),
      F(kl_tensor, stride),
      F(kl_tensor, device),
      F(kl_tensor, reserved),
      F(kl_varlen_args, struct_size),
      F(kl_varlen_args, ver),
      F(kl_varlen_args, q),
      F(kl_varlen_args, k),
      F(kl_varlen_args, v),
      F(kl_varlen_args, cu_seqlens_q),
      F(kl_varlen_args, cu_seqlens_k),
      F(kl_varlen_args, max_seqlen_q),
      F(kl_varlen_args, max_seqlen_k),
      F(kl_varlen_args, seqused_q),
      F(kl_varlen_args, seqused_k),
      F(kl_varlen_args, page_table),
      F(kl_varlen_args, softmax_scale),
      F(kl_varlen_args, causal),
      F(kl_varlen_args, window_left),
      F(kl_varlen_args, window_right),
      F(kl_varlen_args, attention_chunk),
      F(kl_varlen_args, softcap),
      F(kl_varlen_args, num_splits),
      F(kl_varlen_args, pack_gqa),
      F(kl_varlen_args, sm_margin),
      F(kl_varlen_args, qv),
      F(kl_varlen_args, q_descale),
      F(kl_varlen_args, k_descale),
      F(kl_varlen_args, v_descale),
      F(kl_varlen_args, sinks),
      F(kl_varlen_args, out),
      F(kl_varlen_args, softmax_lse),
      F(kl_varlen_args, workspace),
      F(kl_varlen_args, workspace_bytes),
      F(kl_varlen_args, check_values),
      F(kl_kvcache_args, struct_size),
      F(kl_kvcache_args, ver),
      F(kl_kvcache_args, q),
      F(kl_kvcache_args, k_cache),
      F(kl_kvcache_args, v_cache),
      F(kl_kvcache_args, k),
      F(kl_kvcache_args, v),
      F(kl_kvcache_args, qv),
      F(kl_kvcache_args, rotary_cos),
      F(kl_kvcache_args, rotary_sin),
      F(kl_kvcache_args, cache_seqlens),
      F(kl_kvcache_args, cache_batch_idx),
      F(kl_kvcache_args, cache_leftpad),
      F(kl_kvcache_args, page_table),
      F(kl_kvcache_args, cu_seqlens_q),
      F(kl_kvcache_args, cu_seqlens_k_new),
      F(kl_kvcache_args, max_seqlen_q),
      F(kl_kvcache_args, rotary_seqlens),
      F(kl_kvcache_args, q_descale),
      F(kl_kvcache_args, k_descale),
      F(kl_kvcache_args, v_descale),
      F(kl_kvcache_args, softmax_scale),
      F(kl_kvcache_args, causal),
      F(kl_kvcache_args, window_left),
      F(kl_kvcache_args, window_right),
      F(kl_kvcache_args, attention_chunk),
      F(kl_kvcache_args, softcap),
      F(kl_kvcache_args, rotary_interleaved),
      F(kl_kvcache_args, scheduler_metadata),
      F(kl_kvcache_args, num_splits),
      F(kl_kvcache_args, pack_gqa),
      F(kl_kvcache_args, sm_margin),
      F(kl_kvcache_args, sinks),
      F(kl_kvcache_args, out),
      F(kl_kvcache_args, softmax_lse),
      F(kl_kvcache_args, workspace),
      F(kl_kvcache_args, workspace_bytes),
      F(kl_kvcache_args, check_values),
      F(kl_options, struct_size),
      F(kl_options, lockfile),
      F(kl_options, cache_dir),
      F(kl_options, fa3_repo),
      F(kl_options, fa4_repo),
      F(kl_options, force_builtin),
      F(kl_source_info, struct_size),
      F(kl_source_info, source),
      F(kl_source_info, reason_code),
      F(kl_source_info, reason),
      F(kl_source_info, repo_id),
      F(kl_source_info, sha),
      F(kl_source_info, variant),
  };
}
#undef F

}  // namespace

TEST_CASE("the Python package's ctypes structs match the C header field by field",
          "[loader][python]") {
  const std::string pkg = std::string(KERNELS_SOURCE_DIR) + "/loader/python";
  const std::string cmd =
      "cd '" + pkg +
      "' && python3 -c \"import kernels_loader as k\n"
      "for c, n in ((k._Tensor, 'kl_tensor'), (k._VarlenArgs, 'kl_varlen_args'),"
      " (k._KvcacheArgs, 'kl_kvcache_args'), (k._Options, 'kl_options'),"
      " (k._SourceInfo, 'kl_source_info')):\n"
      "  print(n, __import__('ctypes').sizeof(c))\n"
      "  [print(n + '.' + f[0], getattr(c, f[0]).offset) for f in c._fields_]\" 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) KERNELS_SKIP("cannot run python3");
  Layout py;
  std::string output;
  char name[128];
  std::size_t value = 0;
  char line[512];
  while (std::fgets(line, sizeof line, p) != nullptr) {
    output += line;
    if (std::sscanf(line, "%127s %zu", name, &value) == 2) py[name] = value;
  }
  const int rc = pclose(p);
  if (py.empty() && output.find("not found") != std::string::npos)
    KERNELS_SKIP("python3 is not installed");
  INFO(output);
  REQUIRE(rc == 0);
  const Layout c = c_layout();
  for (const auto& [key, bytes] : c) {
    INFO(key);
    REQUIRE(py.count(key) == 1);
    CHECK(py.at(key) == bytes);
  }
  for (const auto& [key, bytes] : py) {
    INFO("Python has a field the C header lacks: " << key);
    CHECK(c.count(key) == 1);
  }
}
