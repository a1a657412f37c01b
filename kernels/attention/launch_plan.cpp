#include "kernels/attention/launch_plan.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace kernels::attention {
namespace {

constexpr KernelInfo kTable[] = {
#include "kernel_table.inc"
};

constexpr std::size_t kWorkspaceAlign = 256;
// Longest key range for which the sm90 kernels run persistent (see plan_forward_sm90).
constexpr int kSm90PersistentMaxKeys = 4096;
// Masked calls with at most this many query rows take a head dim's smallest sm90 tile.
constexpr int kSm90NarrowMaxRows = 1024;
// Paged calls at head dims up to 128 need pages of at least this many rows (plan_forward_sm90).
constexpr int kSm90MinPageRowsSmallHeads = 64;
constexpr int kHeadDims[] = {64, 96, 128, 192, 256};

std::size_t align_up(std::size_t x, std::size_t a) { return (x + a - 1) / a * a; }

int round_head_dim(int d) {
  for (int x : kHeadDims)
    if (d <= x) return x;
  return -1;
}

const char* dtype_name(DType t) { return t == DType::bf16 ? "bf16" : "fp16"; }

long long packed_rows(const FwdParams& p);

// The forward kernel for the call's head dims and dtype: the widest row tile, or the narrowest
// tile that still holds every packed query row (decode), so few rows are padding.
const KernelInfo* find_forward(const FwdParams& p) {
  const int d = round_head_dim(p.d);
  const int dv = round_head_dim(p.dv);
  const long long rows = packed_rows(p);
  const KernelInfo* widest = nullptr;
  const KernelInfo* fitting = nullptr;
  for (const KernelInfo& k : kTable) {
    if (k.kind != KernelKind::forward || k.head_dim != d || k.head_dim_v != dv ||
        k.dtype != p.dtype)
      continue;
    if (widest == nullptr || k.block_m > widest->block_m) widest = &k;
    if (rows <= k.block_m && (fitting == nullptr || k.block_m < fitting->block_m)) fitting = &k;
  }
  return fitting != nullptr ? fitting : widest;
}

const KernelInfo* find_combine(const KernelInfo& fwd) {
  for (const KernelInfo& k : kTable)
    if (k.kind == KernelKind::combine && k.head_dim_v == fwd.head_dim_v && k.dtype == fwd.dtype)
      return &k;
  return nullptr;
}

// Query rows of one (batch, kv head): the h/h_k query heads of a kv head are packed into the row
// tile, so every key and value byte is read once per kv head.
long long packed_rows(const FwdParams& p) {
  return static_cast<long long>(p.seqlen_q) * (p.h / std::max(p.h_k, 1));
}

long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

// FA3's num_splits_heuristic (hopper/heuristics.h) with FA2's eligibility rule: split only when
// the blocks do not already fill the GPU, and pick the smallest split count whose wave
// efficiency is within 85% of the best.
int heuristic_splits(long long total_blocks, long long slots, long long n_blocks) {
  if (total_blocks >= 0.8 * slots || n_blocks <= 4) return 1;
  const int max_splits = static_cast<int>(std::min<long long>({kMaxSplits, slots, n_blocks}));
  auto eligible = [&](int s) {
    return s == 1 || ceil_div(n_blocks, s) != ceil_div(n_blocks, s - 1);
  };
  std::vector<double> eff(max_splits + 1, 0.0);
  double best = 0.0;
  for (int s = 1; s <= max_splits; ++s) {
    if (!eligible(s)) continue;
    const double waves = static_cast<double>(total_blocks) * s / static_cast<double>(slots);
    eff[s] = waves / std::ceil(waves);
    best = std::max(best, eff[s]);
  }
  for (int s = 1; s <= max_splits; ++s)
    if (eligible(s) && eff[s] >= 0.85 * best) return s;
  return 1;
}

Error usage(std::string what, std::string object, std::string hint = {}) {
  return make_error(ErrorCode::usage, std::move(what), std::move(object), std::move(hint));
}

bool aligned16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }
bool stride_ok(int64_t s) { return s % 8 == 0; }

}  // namespace

std::span<const KernelInfo> kernel_table() { return {kTable, std::size(kTable)}; }

Result<void> covers(int d, int dv, DType dtype) {
  // A call's head dims round up to a kernel's (zero-filled columns), so the largest kernel head
  // dims bound what is covered.
  int max_d = 0, max_dv = 0;
  for (const KernelInfo& k : kTable)
    if (k.kind == KernelKind::forward) {
      max_d = std::max(max_d, k.head_dim);
      max_dv = std::max(max_dv, k.head_dim_v);
    }
  if (d <= 0 || d > max_d || d % 8 != 0)
    return usage("head dim " + std::to_string(d) + " is not covered", "FwdParams.d",
                 "head dims are multiples of 8 up to " + std::to_string(max_d));
  if (dv <= 0 || dv > max_dv || dv % 8 != 0)
    return usage("v head dim " + std::to_string(dv) + " is not covered", "FwdParams.dv",
                 "v head dims are multiples of 8 up to " + std::to_string(max_dv));
  const int rd = round_head_dim(d), rdv = round_head_dim(dv);
  std::string pairs;
  for (const KernelInfo& k : kTable) {
    if (k.kind != KernelKind::forward || k.dtype != dtype) continue;
    if (k.head_dim == rd && k.head_dim_v == rdv) return ok();
    if (k.head_dim != k.head_dim_v &&
        pairs.find(std::to_string(k.head_dim) + "x") == std::string::npos)
      pairs += (pairs.empty() ? "" : ", ") + std::to_string(k.head_dim) + "x" +
               std::to_string(k.head_dim_v);
  }
  return usage("no kernel for head dims (" + std::to_string(d) + ", " + std::to_string(dv) + ") " +
                   dtype_name(dtype),
               "FwdParams.d/dv",
               "dv may differ from d only where a kernel pairs them (q/k x v: " + pairs + ")");
}

int choose_num_splits(const FwdParams& p, const DeviceFacts& device) {
  const KernelInfo* k = find_forward(p);
  if (k == nullptr || p.h_k <= 0 || p.b <= 0 || p.seqlen_k <= 0) return 1;
  const long long n_blocks = ceil_div(p.seqlen_k, k->block_n);
  // grid.z = b * splits must stay within 65535.
  const long long grid_cap = std::max<long long>(1, 65535 / p.b);
  if (p.num_splits > 0)
    return static_cast<int>(
        std::clamp<long long>(std::min<long long>({p.num_splits, n_blocks, grid_cap}), 1,
                              kMaxSplits));
  const long long m_blocks = ceil_div(std::max<long long>(packed_rows(p), 1), k->block_m);
  const long long total = m_blocks * p.h_k * p.b;
  // Blocks resident per SM: limited by shared memory and by registers (a 128-row 4-warp block
  // uses ~255 registers per thread, two fit; a 64-row block about half that).
  const long long reg_limit = k->block_m >= 128 ? 2 : 4;
  const long long smem_limit = std::max<long long>(
      1, static_cast<long long>(device.max_smem_per_block_optin) / std::max(k->smem_bytes, 1));
  const long long per_sm = std::min(reg_limit, smem_limit);
  const long long slots = std::max<long long>(device.sm_count, 1) * per_sm;
  return static_cast<int>(std::min<long long>(heuristic_splits(total, slots, n_blocks), grid_cap));
}

std::size_t workspace_size(const FwdParams& p, const DeviceFacts& device) {
  const int splits = choose_num_splits(p, device);
  if (splits <= 1) return 0;
  const std::size_t rows = static_cast<std::size_t>(splits) * p.h * std::max(p.total_q, 0);
  return align_up(rows * p.dv * sizeof(float), kWorkspaceAlign) +
         align_up(rows * sizeof(float), kWorkspaceAlign);
}

Result<LaunchPlan> plan_forward(FwdParams p, const DeviceFacts& device, void* workspace,
                                std::size_t workspace_bytes) {
  if (p.abi_version != kParamsAbiVersion)
    return make_error(ErrorCode::internal,
                      "params ABI version " + std::to_string(p.abi_version) +
                          " does not match the kernels' " + std::to_string(kParamsAbiVersion),
                      "FwdParams.abi_version", "rebuild the caller against this params.h");
  if (device.cc_major < 8)
    return make_error(ErrorCode::no_device,
                      "compute capability " + std::to_string(device.cc_major) + "." +
                          std::to_string(device.cc_minor) + " is below 8.0",
                      "device", "the built-in attention kernels need an Ampere GPU or newer");
  if (p.dtype != DType::bf16 && p.dtype != DType::fp16)
    return usage("dtype must be fp16 or bf16", "FwdParams.dtype");
  if (auto r = covers(p.d, p.dv, p.dtype); !r) return r.error();
  const KernelInfo* fwd = find_forward(p);
  if (p.b < 0 || p.h <= 0 || p.h_k <= 0 || p.h % p.h_k != 0)
    return usage("heads h=" + std::to_string(p.h) + ", h_k=" + std::to_string(p.h_k) +
                     ", b=" + std::to_string(p.b) + " are not valid",
                 "FwdParams.h/h_k/b", "h must be a positive multiple of h_k");
  if (p.seqlen_q < 0 || p.seqlen_k < 0 || p.total_q < 0)
    return usage("negative sequence length", "FwdParams.seqlen_q/seqlen_k/total_q");
  if (p.page_table != nullptr && p.cu_seqlens_k != nullptr)
    return usage("page_table and cu_seqlens_k are mutually exclusive",
                 "FwdParams.page_table/cu_seqlens_k");
  if (p.page_table != nullptr && (p.page_size < 1 || p.num_pages < 1))
    return usage("paged KV needs page_size >= 1 and num_pages >= 1",
                 "FwdParams.page_size/num_pages");
  if (p.window_left < -1 || p.window_right < -1)
    return usage("window sizes must be >= -1", "FwdParams.window_left/window_right");
  if (!(p.softcap >= 0.0f)) return usage("softcap must be >= 0", "FwdParams.softcap");
  if (p.num_splits < 0 || p.num_splits > 256)
    return usage("num_splits " + std::to_string(p.num_splits) + " is outside [0, 256]",
                 "FwdParams.num_splits");
  if ((p.lse != nullptr) != (p.lse_layout != LseLayout::none))
    return usage("lse and lse_layout must be given together", "FwdParams.lse/lse_layout");
  if (p.lse_layout == LseLayout::head_total_q && p.cu_seqlens_q == nullptr)
    return usage("the (h, total_q) LSE layout needs varlen q", "FwdParams.lse_layout",
                 "use LseLayout::batch_head_seq for batched q");
  if (p.cu_seqlens_q == nullptr && p.total_q != p.b * p.seqlen_q)
    return usage("total_q must equal b*seqlen_q for batched q", "FwdParams.total_q");
  if (static_cast<std::size_t>(fwd->smem_bytes) > device.max_smem_per_block_optin)
    return make_error(ErrorCode::no_device,
                      std::string(fwd->name) + " needs " + std::to_string(fwd->smem_bytes) +
                          " bytes of shared memory, the device allows " +
                          std::to_string(device.max_smem_per_block_optin),
                      "device");

  LaunchPlan plan;
  if (p.total_q == 0 || p.b == 0) return plan;  // no query row: nothing to write

  for (const void* ptr : {p.q, p.k, p.v, static_cast<const void*>(p.out)})
    if (ptr == nullptr || !aligned16(ptr))
      return usage("q, k, v and out must be non-null and 16-byte aligned", "FwdParams.q/k/v/out");
  for (int64_t s :
       {p.q_batch_stride, p.q_row_stride, p.q_head_stride, p.k_batch_stride, p.k_row_stride,
        p.k_head_stride, p.v_batch_stride, p.v_row_stride, p.v_head_stride})
    if (!stride_ok(s))
      return usage("q/k/v strides must be multiples of 8 elements (16 bytes)",
                   "FwdParams.*_stride");

  for (int64_t s : {p.out_batch_stride, p.out_row_stride, p.out_head_stride})
    if (s % 2 != 0)
      return usage("out strides must be even (the kernels store element pairs)",
                   "FwdParams.out_*_stride");

  const int splits = choose_num_splits(p, device);
  p.num_splits = splits;
  const long long m_blocks = ceil_div(std::max<long long>(packed_rows(p), 1), fwd->block_m);
  const long long grid_z = static_cast<long long>(p.b) * splits;
  if (m_blocks > 0x7fffffffLL || p.h_k > 65535 || grid_z > 65535)
    return usage("grid too large: " + std::to_string(m_blocks) + " x " + std::to_string(p.h_k) +
                     " x " + std::to_string(grid_z),
                 "FwdParams.seqlen_q/h_k/b");

  if (splits > 1) {
    const std::size_t need = workspace_size(p, device);
    if (workspace == nullptr || workspace_bytes < need ||
        reinterpret_cast<std::uintptr_t>(workspace) % kWorkspaceAlign != 0)
      return usage("workspace of " + std::to_string(workspace_bytes) + " bytes at " +
                       (workspace ? "an address" : "nullptr") + " does not fit " +
                       std::to_string(splits) + " splits (" + std::to_string(need) +
                       " bytes, 256-byte aligned)",
                   "workspace", "allocate workspace_size() bytes, or pass num_splits = 1");
    const std::size_t rows = static_cast<std::size_t>(splits) * p.h * p.total_q;
    auto* base = static_cast<unsigned char*>(workspace);
    p.out_accum = reinterpret_cast<float*>(base);
    p.lse_accum = reinterpret_cast<float*>(base +
                                           align_up(rows * p.dv * sizeof(float), kWorkspaceAlign));
  } else {
    p.out_accum = nullptr;
    p.lse_accum = nullptr;
  }

  KernelLaunch& f = plan.launches[0];
  f.kind = KernelKind::forward;
  f.kernel_name = fwd->name;
  f.grid[0] = static_cast<unsigned>(m_blocks);
  f.grid[1] = static_cast<unsigned>(p.h_k);
  f.grid[2] = static_cast<unsigned>(grid_z);
  f.block[0] = static_cast<unsigned>(fwd->threads);
  f.smem_bytes = static_cast<unsigned>(fwd->smem_bytes);
  f.fwd = p;
  plan.count = 1;
  plan.num_splits = splits;

  if (splits > 1) {
    const KernelInfo* comb = find_combine(*fwd);
    if (comb == nullptr)
      return make_error(ErrorCode::internal, "no combine kernel for " + std::string(fwd->name),
                        "kernel_table()");
    KernelLaunch& c = plan.launches[1];
    c.kind = KernelKind::combine;
    c.kernel_name = comb->name;
    c.grid[0] = static_cast<unsigned>(ceil_div(p.total_q, comb->block_m));
    c.grid[1] = static_cast<unsigned>(p.h);
    c.block[0] = static_cast<unsigned>(comb->threads);
    c.smem_bytes = 0;
    c.combine = CombineParams{};
    CombineParams& cp = c.combine;
    cp.abi_version = kParamsAbiVersion;
    cp.dtype = p.dtype;
    cp.out_accum = p.out_accum;
    cp.lse_accum = p.lse_accum;
    cp.out = p.out;
    cp.out_batch_stride = p.out_batch_stride;
    cp.out_row_stride = p.out_row_stride;
    cp.out_head_stride = p.out_head_stride;
    cp.lse = p.lse;
    cp.lse_layout = p.lse_layout;
    cp.sinks = p.sinks;
    cp.cu_seqlens_q = p.cu_seqlens_q;
    cp.b = p.b;
    cp.h = p.h;
    cp.dv = p.dv;
    cp.seqlen_q = p.seqlen_q;
    cp.total_q = p.total_q;
    cp.num_splits = splits;
    if (c.grid[0] > 0x7fffffffu || p.h > 65535)
      return usage("combine grid too large", "FwdParams.total_q/h");
    plan.count = 2;
  }
  return plan;
}

namespace {

// A tensor map stride for a dimension of extent 1 is never used to address anything, but must
// still be a positive multiple of 16 below 2^40.
uint64_t map_stride(int64_t elements, uint64_t fallback_bytes) {
  return elements > 0 ? static_cast<uint64_t>(elements) * 2 : fallback_bytes;
}

TensorMapSpec map_4d(const void* base, DType dtype, int d, int64_t rows, int heads, int batch,
                     int64_t row_stride, int64_t head_stride, int64_t batch_stride, int box_rows) {
  TensorMapSpec m;
  m.base = base;
  m.dtype = dtype;
  m.dims[0] = static_cast<uint64_t>(d);
  m.dims[1] = static_cast<uint64_t>(rows);
  m.dims[2] = static_cast<uint64_t>(heads);
  m.dims[3] = static_cast<uint64_t>(batch);
  m.strides[0] = map_stride(row_stride, 16);
  m.strides[1] = map_stride(head_stride, m.strides[0]);
  m.strides[2] = map_stride(batch_stride, m.strides[0]);
  m.box[0] = 64;  // 128 bytes: the widest box a 128-byte swizzle allows
  m.box[1] = static_cast<uint32_t>(box_rows);
  m.box[2] = 1;
  m.box[3] = 1;
  return m;
}

Error not_covered(std::string why) {
  return make_error(ErrorCode::no_variant, std::move(why), "plan_forward_sm90");
}

}  // namespace

std::array<TensorMapSpec, 3> sm90_tensor_maps(const FwdParams& p, int64_t k_rows, int block_m,
                                              int block_n) {
  const bool varlen_q = p.cu_seqlens_q != nullptr;
  const bool varlen_k = p.cu_seqlens_k != nullptr;
  const int bq = varlen_q ? 1 : p.b;
  // Paged K/V: (page slot, head, page) with a box of at most one page of rows.
  const bool paged = p.page_table != nullptr;
  const int bk = paged ? p.num_pages : varlen_k ? 1 : p.b;
  const int kv_box = paged ? std::min(block_n, p.page_size) : block_n;
  const int64_t q_rows = varlen_q ? p.total_q : p.seqlen_q;
  return {map_4d(p.q, p.dtype, p.d, q_rows, p.h, bq, p.q_row_stride, p.q_head_stride,
                 varlen_q ? 0 : p.q_batch_stride, block_m),
          map_4d(p.k, p.dtype, p.d, k_rows, p.h_k, bk, p.k_row_stride, p.k_head_stride,
                 varlen_k ? 0 : p.k_batch_stride, kv_box),
          map_4d(p.v, p.dtype, p.dv, k_rows, p.h_k, bk, p.v_row_stride, p.v_head_stride,
                 varlen_k ? 0 : p.v_batch_stride, kv_box)};
}

Result<LaunchPlan> plan_forward_sm90(const FwdParams& p, int64_t k_rows,
                                     const DeviceFacts& device) {
  if (device.cc_major != 9 || device.cc_minor != 0)
    return not_covered("the TMA kernels are built for sm_90a only");
  if (p.num_splits > 1) return not_covered("split K/V requested");
  // Decode-like calls (few query rows per head) are faster on the built-in kernels, which pack
  // the query heads of a kv head into one tile and split the keys.
  if (p.seqlen_q < 64) return not_covered("fewer than 64 query rows");
  // Where a head dim has two tiles (d = 64: 192x128 and 128x128; d = 192: 128x112 and 128x64;
  // d = 256: 128x80 and 128x64), short masked calls take the smaller: less padding and less of
  // the causal diagonal per tile (docs/PERFORMANCE.md, steps 12-13); the rest the larger.
  // Paged K/V: a tile whose key blocks TMA copies as whole rows of pages (sm90_pages_by_tma) is
  // preferred; where none fits, the kernel's producer gathers the rows with cp.async.
  const bool paged = p.page_table != nullptr;
  bool need_fit = paged;
  auto pages_fit = [&](const KernelInfo& k) {
    return need_fit ? sm90_pages_by_tma(p.page_size, k.block_n)
                    : !paged || sm90_gathers_pages(k.head_dim, k.block_n);
  };
  const bool masked = p.is_causal || p.window_left >= 0 || p.window_right >= 0;
  const bool small = masked && p.seqlen_q <= kSm90NarrowMaxRows;
  // The kernel walks tiles in rounds of gridDim.x (a snake order, sm90_tile_of_round). Short keys
  // run persistent, one block per SM, so the next tile's loads overlap this tile's epilogue;
  // long keys one block per tile, which the hardware balances best under a causal mask
  // (measured: docs/PERFORMANCE.md, sm90 ladder step 5).
  const bool persistent = p.seqlen_k <= kSm90PersistentMaxKeys;
  // Key tiles wider than 128 (d128's 176) only for calls run one block per tile: 1-4% faster
  // there, 2-19% slower persistent (ladder step 20).
  auto suits_call = [&](const KernelInfo& k) { return k.block_n <= 128 || !persistent; };
  auto area = [](const KernelInfo& k) { return k.block_m * k.block_n; };
  const KernelInfo* fwd = nullptr;
  bool any_tile = false;
  for (int pass = 0; pass < 2 && fwd == nullptr; ++pass, need_fit = false) {
    for (const KernelInfo& k : kTable) {
      if (k.kind != KernelKind::forward_sm90 || k.head_dim != p.d || k.head_dim_v != p.dv ||
          k.dtype != p.dtype)
        continue;
      any_tile = true;
      if (pages_fit(k) && suits_call(k) && (fwd == nullptr || (area(k) < area(*fwd)) == small))
        fwd = &k;
    }
    if (!paged) break;
  }
  const bool gathered = paged && fwd != nullptr && !sm90_pages_by_tma(p.page_size, fwd->block_n);
  if (!any_tile)
    return not_covered(p.d == p.dv ? "no TMA kernel for head dim " + std::to_string(p.d)
                                   : "no TMA kernel for head dims " + std::to_string(p.d) + " x " +
                                         std::to_string(p.dv));
  // Small pages at small head dims: the producer's per-page copies and page-table reads do not
  // keep up with the short key blocks, and the built-in kernels are faster (pages of 16 rows:
  // 0.60x at d64, 0.92x at d128; 1.5-2.2x at d192/d256; docs/PERFORMANCE.md).
  // Gathered pages (cp.async, row by row): 0.92-0.99x of the built-in kernels below head dim
  // 256, 1.43x at 256 with 64-key blocks (pages of 1 and 8 rows, docs/PERFORMANCE.md); only
  // those kernels gather (sm90_gathers_pages).
  if (fwd == nullptr)
    return not_covered("page size " + std::to_string(p.page_size) +
                       " would be gathered row by row: the built-in kernels are faster below head "
                       "dim " +
                       std::to_string(kSm90MinHeadDimGathered));
  if (paged && !gathered && p.page_size < kSm90MinPageRowsSmallHeads && p.d <= 128)
    return not_covered("page size " + std::to_string(p.page_size) + " below " +
                       std::to_string(kSm90MinPageRowsSmallHeads) + " rows at head dim " +
                       std::to_string(p.d) + ": the built-in kernels are faster");
  if (static_cast<std::size_t>(fwd->smem_bytes) > device.max_smem_per_block_optin)
    return not_covered("not enough shared memory");
  // A tensor map has no zero-sized dimension: with no key rows at all (an empty cache) the
  // built-in kernels write the rows' empty results.
  if (k_rows == 0) return not_covered("no key rows (seqlen_k 0)");
  const int64_t rows_needed = paged ? p.page_size : p.cu_seqlens_k != nullptr ? 1 : p.seqlen_k;
  if (k_rows < rows_needed || k_rows > 0x7fffffffLL) return not_covered("k rows out of range");
  // The epilogue stores 16-byte groups of 8 columns.
  for (int64_t s : {p.out_batch_stride, p.out_row_stride, p.out_head_stride})
    if (s % 8 != 0) return not_covered("out strides that are not multiples of 8 elements");
  const long long tiles = ceil_div(std::max(p.seqlen_q, 1), fwd->block_m) * p.h * p.b;
  if (tiles > 0x7fffffffLL) return not_covered("too many tiles");

  LaunchPlan plan;
  KernelLaunch& f = plan.launches[0];
  f.kind = KernelKind::forward_sm90;
  f.kernel_name = fwd->name;
  f.grid[0] = static_cast<unsigned>(
      persistent ? std::clamp<long long>(tiles, 1, std::max(device.sm_count, 1)) : tiles);
  f.block[0] = static_cast<unsigned>(fwd->threads);
  f.smem_bytes = static_cast<unsigned>(fwd->smem_bytes);
  f.tma_fwd = TmaFwdParams{};
  f.tma_fwd.fwd = p;
  f.tma_fwd.fwd.num_splits = 1;
  f.tma_fwd.fwd.out_accum = nullptr;
  f.tma_fwd.fwd.lse_accum = nullptr;
  f.tensor_maps = sm90_tensor_maps(p, k_rows, fwd->block_m, fwd->block_n);
  plan.count = 1;
  plan.num_splits = 1;
  return plan;
}

}  // namespace kernels::attention
