#include "attention_case.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>

#include "gpu_harness.h"
#include "kernels/attention/launch_plan.h"
#include "reference.h"

namespace kernels::test {
namespace {

using attention::DType;
constexpr uint16_t kPoison = 0x7fff;  // NaN in both bf16 and fp16

template <class T>
std::vector<T> prefix(const std::vector<int>& lens) {
  std::vector<T> cu(lens.size() + 1, 0);
  for (size_t i = 0; i < lens.size(); ++i) cu[i + 1] = cu[i] + lens[i];
  return cu;
}

DeviceBuffer to_device(const void* data, size_t bytes) {
  DeviceBuffer buf(std::max<size_t>(bytes, 16));
  if (bytes > 0) buf.upload(data, bytes);
  return buf;
}

}  // namespace

std::string AttentionCase::describe() const {
  std::ostringstream s;
  s << (dtype == DType::bf16 ? "bf16" : "fp16") << " d=" << d << " dv=" << dv << " h=" << h
    << " h_k=" << h_k << " q=" << (varlen_q ? "varlen" : "batched") << " kv="
    << (kv == KvLayout::varlen  ? "varlen"
        : kv == KvLayout::cache ? "cache"
                                : "paged");
  if (kv == KvLayout::cache && !seqused) s << "(no seqused_k)";
  if (kv == KvLayout::paged) s << "(page " << page_size << ")";
  s << " sq=[";
  for (size_t i = 0; i < sq.size(); ++i) s << (i ? "," : "") << sq[i];
  s << "] sk=[";
  for (size_t i = 0; i < sk.size(); ++i) s << (i ? "," : "") << sk[i];
  s << "] causal=" << causal << " window=(" << window_left << "," << window_right
    << ") softcap=" << softcap << " scale_mul=" << scale_mul << " sinks=" << sinks << " lse=" << lse
    << " num_splits=" << num_splits << " padded=" << padded_strides << " graph=" << graph;
  return s.str();
}

CaseResult run_case(const AttentionCase& c, std::mt19937& rng) {
  CaseResult res;
  const Gpu& g = gpu();
  const int b = static_cast<int>(c.sq.size());
  std::normal_distribution<float> normal(0.0f, 1.0f);

  RefProblem ref;
  ref.b = b;
  ref.h = c.h;
  ref.h_k = c.h_k;
  ref.d = c.d;
  ref.dv = c.dv;
  ref.sq = c.sq;
  ref.sk = c.sk;
  ref.causal = c.causal;
  ref.window_left = c.window_left;
  ref.window_right = c.window_right;
  ref.softcap = c.softcap;
  ref.softmax_scale = c.scale_mul / std::sqrt(static_cast<float>(c.d));
  auto draw = [&](size_t n) {
    std::vector<float> x(n);
    for (auto& e : x) e = round_to(normal(rng), c.dtype);
    return x;
  };
  ref.q.resize(b);
  ref.k.resize(b);
  ref.v.resize(b);
  for (int bi = 0; bi < b; ++bi) {
    ref.q[bi] = draw(static_cast<size_t>(c.sq[bi]) * c.h * c.d);
    ref.k[bi] = draw(static_cast<size_t>(c.sk[bi]) * c.h_k * c.d);
    ref.v[bi] = draw(static_cast<size_t>(c.sk[bi]) * c.h_k * c.dv);
  }
  if (c.sinks) {
    ref.sinks.resize(c.h);
    for (auto& s : ref.sinks) s = 2.0f * normal(rng);
  }

  // Layouts (strides in elements).
  const int pad = c.padded_strides ? 8 : 0;
  const int64_t q_head = c.d + pad, q_row = c.h * q_head + 2 * pad;
  const int64_t o_head = c.dv + pad, o_row = c.h * o_head + 2 * pad;
  const int64_t k_head = c.d + pad, k_row = c.h_k * k_head + 2 * pad;
  const int64_t v_head = c.dv + pad, v_row = c.h_k * v_head + 2 * pad;
  const int max_sq = *std::max_element(c.sq.begin(), c.sq.end());
  const int max_sk = *std::max_element(c.sk.begin(), c.sk.end());
  const auto cu_q = prefix<int32_t>(c.sq);
  const int total_q = c.varlen_q ? cu_q[b] : b * max_sq;

  // Q and out.
  const size_t q_elems = static_cast<size_t>(total_q) * q_row;
  std::vector<uint16_t> hq(q_elems, kPoison);
  auto q_at = [&](int bi, int i) -> int64_t {
    return c.varlen_q ? static_cast<int64_t>(cu_q[bi] + i) * q_row
                      : (static_cast<int64_t>(bi) * max_sq + i) * q_row;
  };
  for (int bi = 0; bi < b; ++bi)
    for (int i = 0; i < c.sq[bi]; ++i)
      for (int hh = 0; hh < c.h; ++hh)
        for (int e = 0; e < c.d; ++e)
          hq[q_at(bi, i) + hh * q_head + e] = to_bits(
              ref.q[bi][(static_cast<size_t>(i) * c.h + hh) * c.d + e], c.dtype);
  const size_t o_elems = static_cast<size_t>(total_q) * o_row;

  // K and V.
  std::vector<uint16_t> hk, hv;
  std::vector<int32_t> cu_k, seqused, page_table;
  int num_pages = 0, pt_stride = 0, capacity = 0;
  std::vector<int64_t> k_off(0), v_off(0);  // per (batch, key): row offsets
  auto place = [&](auto&& row_of) {
    for (int bi = 0; bi < b; ++bi)
      for (int j = 0; j < c.sk[bi]; ++j) {
        const auto [kr, vr] = row_of(bi, j);
        for (int hh = 0; hh < c.h_k; ++hh) {
          for (int e = 0; e < c.d; ++e)
            hk[kr + hh * k_head + e] = to_bits(
                ref.k[bi][(static_cast<size_t>(j) * c.h_k + hh) * c.d + e], c.dtype);
          for (int e = 0; e < c.dv; ++e)
            hv[vr + hh * v_head + e] = to_bits(
                ref.v[bi][(static_cast<size_t>(j) * c.h_k + hh) * c.dv + e], c.dtype);
        }
      }
  };
  int64_t k_batch = 0, v_batch = 0;
  if (c.kv == KvLayout::varlen) {
    cu_k = prefix<int32_t>(c.sk);
    hk.assign(static_cast<size_t>(std::max(cu_k[b], 1)) * k_row, kPoison);
    hv.assign(static_cast<size_t>(std::max(cu_k[b], 1)) * v_row, kPoison);
    place([&](int bi, int j) {
      return std::pair<int64_t, int64_t>{(cu_k[bi] + j) * k_row, (cu_k[bi] + j) * v_row};
    });
  } else if (c.kv == KvLayout::cache) {
    capacity = std::max(max_sk + c.cache_extra, 1);
    k_batch = capacity * k_row;
    v_batch = capacity * v_row;
    hk.assign(static_cast<size_t>(b) * k_batch, kPoison);
    hv.assign(static_cast<size_t>(b) * v_batch, kPoison);
    seqused = c.sk;
    place([&](int bi, int j) {
      return std::pair<int64_t, int64_t>{bi * k_batch + j * k_row, bi * v_batch + j * v_row};
    });
  } else {
    const int ps = c.page_size;
    const int max_pages = std::max((max_sk + ps - 1) / ps, 1);
    pt_stride = max_pages + 3;
    int used = 0;
    for (int bi = 0; bi < b; ++bi) used += (c.sk[bi] + ps - 1) / ps;
    num_pages = used + 5;  // a few pages nobody owns
    std::vector<int32_t> perm(num_pages);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    // Entries past a sequence's pages point far outside the pool: reading one is a bug.
    page_table.assign(static_cast<size_t>(b) * pt_stride, 1 << 28);
    int next = 0;
    for (int bi = 0; bi < b; ++bi)
      for (int pg = 0; pg < (c.sk[bi] + ps - 1) / ps; ++pg)
        page_table[bi * pt_stride + pg] = perm[next++];
    k_batch = static_cast<int64_t>(ps) * k_row;
    v_batch = static_cast<int64_t>(ps) * v_row;
    hk.assign(static_cast<size_t>(num_pages) * k_batch, kPoison);
    hv.assign(static_cast<size_t>(num_pages) * v_batch, kPoison);
    seqused = c.sk;
    place([&](int bi, int j) {
      const int page = page_table[bi * pt_stride + j / ps];
      return std::pair<int64_t, int64_t>{page * k_batch + (j % ps) * k_row,
                                         page * v_batch + (j % ps) * v_row};
    });
  }

  DeviceBuffer dq = to_device(hq.data(), hq.size() * 2);
  DeviceBuffer dk = to_device(hk.data(), hk.size() * 2);
  DeviceBuffer dv = to_device(hv.data(), hv.size() * 2);
  std::vector<uint16_t> poison_out(o_elems, kPoison);
  DeviceBuffer dout = to_device(poison_out.data(), poison_out.size() * 2);
  DeviceBuffer dcu_q = to_device(cu_q.data(), cu_q.size() * 4);
  DeviceBuffer dcu_k = to_device(cu_k.data(), cu_k.size() * 4);
  DeviceBuffer dseq = to_device(seqused.data(), seqused.size() * 4);
  DeviceBuffer dpt = to_device(page_table.data(), page_table.size() * 4);
  DeviceBuffer dsinks = to_device(ref.sinks.data(), ref.sinks.size() * 4);
  const size_t lse_elems = static_cast<size_t>(c.h) * total_q;
  std::vector<float> poison_lse(lse_elems, std::numeric_limits<float>::quiet_NaN());
  DeviceBuffer dlse = to_device(poison_lse.data(), poison_lse.size() * 4);

  attention::FwdParams p{};
  p.abi_version = attention::kParamsAbiVersion;
  p.dtype = c.dtype;
  p.q = dq.get();
  p.k = dk.get();
  p.v = dv.get();
  p.out = dout.get();
  p.q_batch_stride = static_cast<int64_t>(max_sq) * q_row;
  p.q_row_stride = q_row;
  p.q_head_stride = q_head;
  p.out_batch_stride = static_cast<int64_t>(max_sq) * o_row;
  p.out_row_stride = o_row;
  p.out_head_stride = o_head;
  p.k_batch_stride = k_batch;
  p.k_row_stride = k_row;
  p.k_head_stride = k_head;
  p.v_batch_stride = v_batch;
  p.v_row_stride = v_row;
  p.v_head_stride = v_head;
  p.cu_seqlens_q = c.varlen_q ? static_cast<const int32_t*>(dcu_q.get()) : nullptr;
  p.cu_seqlens_k = c.kv == KvLayout::varlen ? static_cast<const int32_t*>(dcu_k.get()) : nullptr;
  p.seqused_k = c.kv == KvLayout::paged || (c.kv == KvLayout::cache && c.seqused)
                    ? static_cast<const int32_t*>(dseq.get())
                    : nullptr;
  p.page_table = c.kv == KvLayout::paged ? static_cast<const int32_t*>(dpt.get()) : nullptr;
  p.page_table_batch_stride = pt_stride;
  p.page_size = c.kv == KvLayout::paged ? c.page_size : 0;
  p.num_pages = num_pages;
  p.b = b;
  p.h = c.h;
  p.h_k = c.h_k;
  p.d = c.d;
  p.dv = c.dv;
  p.seqlen_q = max_sq;
  p.seqlen_k = c.kv == KvLayout::paged   ? static_cast<int>(pt_stride - 3) * c.page_size
               : c.kv == KvLayout::cache ? capacity
                                         : max_sk;
  p.total_q = total_q;
  p.softmax_scale = ref.softmax_scale;
  p.softcap = c.softcap;
  p.window_left = c.window_left;
  p.window_right = c.window_right;
  p.is_causal = c.causal ? 1 : 0;
  p.sinks = c.sinks ? static_cast<const float*>(dsinks.get()) : nullptr;
  p.lse = c.lse ? static_cast<float*>(dlse.get()) : nullptr;
  p.lse_layout = !c.lse       ? attention::LseLayout::none
                 : c.varlen_q ? attention::LseLayout::head_total_q
                              : attention::LseLayout::batch_head_seq;
  p.num_splits = c.num_splits;

  const size_t ws_bytes = attention::workspace_size(p, g.facts);
  DeviceBuffer ws(ws_bytes);
  // Rows of k in its token dimension, as the loader passes it (the TMA maps stop there).
  const int64_t k_rows = c.kv == KvLayout::varlen  ? std::max(cu_k[b], 1)
                         : c.kv == KvLayout::cache ? capacity
                                                   : c.page_size;
  attention::LaunchPlan planned;
  if (std::string err = plan_call(p, k_rows, ws.get(), ws_bytes, planned); !err.empty()) {
    res.error = err;
    return res;
  }
  const attention::LaunchPlan* plan = &planned;
  res.splits_used = plan->num_splits;
  res.kernel = plan->launches[0].kernel_name;
  if (c.graph) {
    // The outputs are still poisoned: only the graph's replays can write them.
    cudaStream_t stream = nullptr;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
               "cudaStreamBeginCapture");
    const std::string err = launch(*plan, stream);
    const cudaError_t end = cudaStreamEndCapture(stream, &graph);
    if (!err.empty() || end != cudaSuccess) {
      res.error = "capture: " + (err.empty() ? std::string(cudaGetErrorString(end)) : err);
      cudaStreamDestroy(stream);
      return res;
    }
    check_cuda(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
    for (int replay = 0; replay < 2; ++replay)
      check_cuda(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    check_cuda(cudaStreamSynchronize(stream), "graph replay");
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
  } else if (std::string err = launch(*plan, nullptr); !err.empty()) {
    res.error = err;
    return res;
  }
  if (cudaError_t err = cudaDeviceSynchronize(); err != cudaSuccess) {
    res.error = std::string("kernel execution: ") + cudaGetErrorString(err);
    return res;
  }
  std::vector<uint16_t> hout(o_elems);
  dout.download(hout.data(), hout.size() * 2);
  std::vector<float> hlse(lse_elems);
  dlse.download(hlse.data(), hlse.size() * 4);
  res.raw_out = hout;

  const RefOutput high = attention_reference(ref, Precision::high, c.dtype);
  const RefOutput low = attention_reference(ref, Precision::low, c.dtype);
  const double neg_inf = -std::numeric_limits<double>::infinity();
  for (int bi = 0; bi < b; ++bi)
    for (int i = 0; i < c.sq[bi]; ++i) {
      const int64_t orow = c.varlen_q ? static_cast<int64_t>(cu_q[bi] + i) * o_row
                                      : (static_cast<int64_t>(bi) * max_sq + i) * o_row;
      for (int hh = 0; hh < c.h; ++hh) {
        for (int e = 0; e < c.dv; ++e) {
          const size_t li = (static_cast<size_t>(i) * c.h + hh) * c.dv + e;
          const double got = from_bits(hout[orow + hh * o_head + e], c.dtype);
          const double want = high.out[bi][li];
          if (!std::isfinite(got)) {
            ++res.unwritten;
            continue;
          }
          res.err = std::max(res.err, std::abs(got - want));
          res.err_low = std::max(res.err_low, std::abs(low.out[bi][li] - want));
          const float r = round_to(static_cast<float>(want), c.dtype);
          const float t = round_to(round_to(r + 0.3f, c.dtype) - 0.3f, c.dtype);
          res.atol = std::max(res.atol, 2.0 * std::abs(static_cast<double>(t) - r));
        }
        if (c.lse) {
          const size_t idx = c.varlen_q ? static_cast<size_t>(hh) * total_q + cu_q[bi] + i
                                        : (static_cast<size_t>(bi) * c.h + hh) * max_sq + i;
          const double got = hlse[idx];
          const double want = high.lse[bi][static_cast<size_t>(i) * c.h + hh];
          if ((got == neg_inf) != (want == neg_inf) || std::isnan(got)) {
            ++res.lse_mismatch_inf;
          } else if (want != neg_inf) {
            res.lse_err = std::max(res.lse_err, std::abs(got - want) / (1.0 + std::abs(want)));
          }
        }
      }
    }
  return res;
}

}  // namespace kernels::test
