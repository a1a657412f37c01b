#include "value_checks.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kernels::loader {
namespace {

Error bad(const char* argument, std::string what) {
  return make_error(ErrorCode::usage, std::move(what) + " [values]", argument,
                    "fix the index tensor; these values are read by the kernels unchecked");
}

Result<std::vector<std::int32_t>> fetch(Driver& d, Context c, Stream s, const std::int32_t* p,
                                        std::size_t n) {
  std::vector<std::int32_t> v(n);
  if (n == 0) return v;
  if (auto r = d.copy_to_host(v.data(), p, n * sizeof(std::int32_t), c, s); !r) return r.error();
  return v;
}

Result<void> check_cu_seqlens(const std::vector<std::int32_t>& cu, const char* name,
                              std::int64_t max_len, std::int64_t total) {
  if (cu.empty() || cu[0] != 0) return bad(name, std::string(name) + " must start at 0");
  for (std::size_t i = 1; i < cu.size(); ++i) {
    if (cu[i] < cu[i - 1])
      return bad(name, std::string(name) + " must be non-decreasing (entry " + std::to_string(i) +
                           " is " + std::to_string(cu[i]) + " after " + std::to_string(cu[i - 1]) +
                           ")");
    if (cu[i] - cu[i - 1] > max_len)
      return bad(name, "sequence " + std::to_string(i - 1) + " of " + name + " has " +
                           std::to_string(cu[i] - cu[i - 1]) + " rows, more than max_seqlen " +
                           std::to_string(max_len));
  }
  if (total >= 0 && cu.back() != total)
    return bad(name, std::string(name) + " ends at " + std::to_string(cu.back()) +
                         " but the tensor has " + std::to_string(total) + " rows");
  return ok();
}

}  // namespace

Result<void> check_index_values(Driver& d, Context c, Stream s, const attention::FwdParams& p) {
  const auto b = static_cast<std::size_t>(p.b);
  if (p.cu_seqlens_q != nullptr) {
    auto cu = fetch(d, c, s, p.cu_seqlens_q, b + 1);
    if (!cu) return cu.error();
    if (auto r = check_cu_seqlens(*cu, "cu_seqlens_q", p.seqlen_q, p.total_q); !r) return r;
  }
  if (p.cu_seqlens_k != nullptr) {
    auto cu = fetch(d, c, s, p.cu_seqlens_k, b + 1);
    if (!cu) return cu.error();
    if (auto r = check_cu_seqlens(*cu, "cu_seqlens_k", p.seqlen_k, -1); !r) return r;
  }
  std::vector<std::int32_t> used;
  if (p.seqused_k != nullptr) {
    auto u = fetch(d, c, s, p.seqused_k, b);
    if (!u) return u.error();
    used = std::move(*u);
    for (std::size_t i = 0; i < b; ++i)
      if (used[i] < 0 || used[i] > p.seqlen_k)
        return bad("cache_seqlens", "cache_seqlens[" + std::to_string(i) +
                                        "] = " + std::to_string(used[i]) + " is outside [0, " +
                                        std::to_string(p.seqlen_k) + "] (the cache's capacity)");
  }
  if (p.page_table != nullptr) {
    for (std::size_t i = 0; i < b; ++i) {
      const std::int64_t len = used.empty() ? p.seqlen_k : used[i];
      const std::size_t pages = static_cast<std::size_t>((len + p.page_size - 1) / p.page_size);
      auto row = fetch(d, c, s, p.page_table + i * p.page_table_batch_stride, pages);
      if (!row) return row.error();
      for (std::size_t j = 0; j < pages; ++j)
        if ((*row)[j] < 0 || (*row)[j] >= p.num_pages)
          return bad("page_table", "page_table[" + std::to_string(i) + ", " + std::to_string(j) +
                                       "] = " + std::to_string((*row)[j]) +
                                       " is not a page in [0, " + std::to_string(p.num_pages) +
                                       ")");
    }
  }
  return ok();
}

}  // namespace kernels::loader
