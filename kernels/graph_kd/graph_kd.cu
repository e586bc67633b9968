// SPDX-License-Identifier: Apache-2.0
// CUDA kernels of the graph-contrastive distillation loss (include/gkd/cuda/graph_kd.hpp): row
// normalisation into a padded workspace; the Tiles schedule (a tensor-core tiled forward with online
// log-sum-exp, a recomputing backward that accumulates dF̂_s in shared memory); the Panels schedule
// (cuBLAS similarity panels reduced one block per row); the normalisation's backward; and the SmallGraphs
// schedule (one block per graph, everything in shared memory, one launch).
#include <cub/block/block_reduce.cuh>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cstdint>

#include "gkd/cuda/graph_kd.hpp"
#include "gkd/losses/detail/graph_kd_small.hpp"
#include "gkd/losses/detail/graph_kd_tile.hpp"
#include "graph_kd/graph_kd_check.hpp"
#include "runtime/blas.hpp"

namespace gkd::cuda {

namespace {

using gkd::detail::KlRow;
using gkd::detail::MaskSpec;
using gkd::detail::MergeStates;
using gkd::detail::OnlineLse;
namespace wmma = nvcuda::wmma;

constexpr int kBlock = 64;              // rows per block and columns per tile
constexpr int kThreads = 128;           // 4 warps: warp w owns rows 16w … 16w + 15 of the tile GEMMs
constexpr int kLds = kBlock + 4;        // leading dim of the shared tiles (floats)
constexpr std::int64_t kChannelPad = 16;
constexpr std::int64_t kPanelMinGroup = 1024;  // Auto: block-diagonal groups from this size on run as panels
constexpr int kRowThreads = 256;               // threads of the per-row panel kernels
constexpr int kSmallThreads = 256;             // SmallGraphs: threads per graph (one thread per row: ≥ kSmallGraphsMaxNodes)
constexpr int kSmallChunkFloats = 8192;        // SmallGraphs: floats of one staged chunk of rows (rows × channels)
static_assert(kSmallThreads >= kSmallGraphsMaxNodes, "SmallGraphs runs one thread per row of a graph.");

struct Dims {
  std::int64_t n, np;     // rows, rows padded to kBlock
  std::int64_t cs, csp;   // student channels, padded to kChannelPad
  std::int64_t ct, ctp;   // teacher channels, padded
  float inv_tau;
  MaskSpec mask;
  std::int64_t splits;    // column splits per row block (grid.y): enough blocks to fill the device
  bool nce;               // InfoNCE form (else KL)
  bool panels;            // Panels schedule
  bool small;             // SmallGraphs schedule (neither: Tiles)
  bool fp32_gemm;         // panels: FP32 GEMMs (TF32x3 precision) instead of TF32
  bool bf16_sims;         // panels: similarity GEMMs on bf16 copies of the normalised rows (BF16 precision)
  std::int64_t group;     // panels, small: nodes per independent graph (n for Full)
  std::int64_t panel_rows, panel_ld;  // panels: rows per panel, leading dimension of a panel row
  int small_rows, small_chunk;        // small: rows held (the group rounded up to 16 · 2^k), channels per chunk
};

std::int64_t round_up(std::int64_t v, std::int64_t m) { return (v + m - 1) / m * m; }
std::size_t align256(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

std::size_t tile_backward_smem(std::int64_t csp) {
  return sizeof(float) * std::size_t(2 * kBlock * kLds + kBlock * (csp + 4));
}

int smem_limit() {
  int device = 0, limit = 0;
  GKD_GRAPH_KD_CUDA(cudaGetDevice(&device));
  GKD_GRAPH_KD_CUDA(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return limit;
}

std::int64_t graph_size(const GraphKDConfig& c) { return c.mask == GraphKDMask::Full ? c.n : c.group_size; }

// Auto, from H100 measurements (benchmarks/README.md): panels won for every single graph (N = 64: 0.11 vs
// 0.29 ms; N = 4096, C = 512: 1.0 vs 11.4 ms) and lost for 64 graphs of 64 (5.8 vs 0.38 ms: one launch
// per panel); the tiles' floor of 0.4 ms for DCGD's star graphs is what SmallGraphs replaces.
Schedule resolve(const GraphKDConfig& c) {
  if (c.schedule != Schedule::Auto) return c.schedule;
  if (c.mask != GraphKDMask::Full && c.group_size <= kSmallGraphsMaxNodes) return Schedule::SmallGraphs;
  if (c.mask == GraphKDMask::Star) return Schedule::Tiles;
  const bool panels = c.mask == GraphKDMask::Full || c.precision == GraphKDPrecision::BF16 ||
                      c.group_size >= kPanelMinGroup ||
                      tile_backward_smem(round_up(c.student_channels, kChannelPad)) > std::size_t(smem_limit());
  return panels ? Schedule::Panels : Schedule::Tiles;
}

constexpr int kPartKl = 5;   // t.max, t.sum, s.max, s.sum, weighted
constexpr int kPartNce = 3;  // max, sum, positive

// Column tiles a 64-row block visits (at most), over all row blocks.
std::int64_t max_tiles(const GraphKDConfig& c) {
  if (c.mask == GraphKDMask::Full) return round_up(c.n, kBlock) / kBlock;
  return (kBlock + c.group_size) / kBlock + 2;
}

// Split the columns of each row block so that the grid has about two blocks per multiprocessor.
std::int64_t column_splits(const GraphKDConfig& c) {
  int device = 0, sms = 0;
  GKD_GRAPH_KD_CUDA(cudaGetDevice(&device));
  GKD_GRAPH_KD_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const std::int64_t row_blocks = round_up(c.n, kBlock) / kBlock;
  const std::int64_t want = (2 * std::int64_t(sms) + row_blocks - 1) / row_blocks;
  return std::max<std::int64_t>(1, std::min<std::int64_t>({want, max_tiles(c), 64}));
}

// SmallGraphs: rows held per graph (16, 32, 64 or 128) and channels per staged chunk (a multiple of 32).
int small_rows(std::int64_t group) {
  int rows = 16;
  while (rows < group) rows *= 2;
  return rows;
}

std::size_t small_smem(const Dims& d) {
  const std::size_t gp = std::size_t(d.small_rows), gram = gp * (gp + 1), chunk = gp * std::size_t(d.small_chunk + 1);
  return sizeof(float) * (2 * gram + (d.nce ? 2 : 1) * chunk + 8 * gp);
}

Dims make_dims(const GraphKDConfig& c) {
  Dims d{};
  const Schedule schedule = resolve(c);
  d.panels = schedule == Schedule::Panels;
  d.small = schedule == Schedule::SmallGraphs;
  d.splits = d.panels || d.small ? 1 : column_splits(c);
  d.n = c.n;
  d.np = round_up(c.n, kBlock);
  d.cs = c.student_channels;
  d.csp = round_up(c.student_channels, kChannelPad);
  d.ct = c.teacher_channels;
  d.ctp = round_up(c.teacher_channels, kChannelPad);
  d.inv_tau = 1.0f / c.temperature;
  d.mask.kind = c.mask == GraphKDMask::Full ? 0 : c.mask == GraphKDMask::BlockDiagonal ? 1 : 2;
  d.mask.group = c.mask == GraphKDMask::Full ? 1 : c.group_size;
  d.nce = c.form == GraphKDForm::InfoNCE;
  d.fp32_gemm = c.precision == GraphKDPrecision::TF32x3;
  d.bf16_sims = c.precision == GraphKDPrecision::BF16;
  d.group = graph_size(c);
  if (d.small) {
    d.small_rows = small_rows(d.group);
    d.small_chunk = int(std::min(round_up(kSmallChunkFloats / d.small_rows, 32), round_up(std::max(d.cs, d.ct), 32)));
  }
  d.panel_ld = round_up(d.group, 32);
  d.panel_rows = std::min(c.panel_rows > 0 ? c.panel_rows : default_panel_rows(d.panel_ld, d.nce ? 1 : 2), d.group);
  return d;
}

// Workspace: normalised student [np, csp], normalised teacher [np, ctp], student norms [np]; then the
// tiles' per-split row states [splits, np, 5] (forward) or the per-split dF̂_s [splits, np, csp] (backward;
// splits = 1 for panels), the row weights [np] (backward), the panels' teacher and student similarity
// rows [panel_rows, panel_ld] each (InfoNCE: student only), and bf16 copies of the normalised rows (BF16).
struct Workspace {
  float* s_hat;
  float* t_hat;
  float* s_norm;
  float* part;
  float* weight;
  float* panel_a;
  float* panel_b;
  __nv_bfloat16* s16;
  __nv_bfloat16* t16;
};

std::size_t workspace_layout(const Dims& d, bool backward, void* base, Workspace* ws) {
  if (d.small) {  // SmallGraphs works in shared memory only
    if (ws) *ws = Workspace{};
    return 0;
  }
  std::size_t total = 0;
  auto take = [&](std::size_t bytes) -> void* {
    void* at = bytes && base ? static_cast<char*>(base) + total : nullptr;
    total += align256(bytes);
    return at;
  };
  const std::int64_t part = backward ? d.splits * d.np * d.csp : d.panels ? 0 : d.splits * d.np * kPartKl;
  const std::int64_t panel = d.panels ? d.panel_rows * d.panel_ld : 0;
  constexpr std::size_t f = sizeof(float), h = sizeof(__nv_bfloat16);
  Workspace w{};
  w.s_hat = static_cast<float*>(take(f * std::size_t(d.np * d.csp)));
  w.t_hat = static_cast<float*>(take(f * std::size_t(d.np * d.ctp)));
  w.s_norm = static_cast<float*>(take(f * std::size_t(d.np)));
  w.part = static_cast<float*>(take(f * std::size_t(part)));
  w.weight = static_cast<float*>(take(backward ? f * std::size_t(d.np) : 0));
  w.panel_a = static_cast<float*>(take(d.nce ? 0 : f * std::size_t(panel)));
  w.panel_b = static_cast<float*>(take(f * std::size_t(panel)));
  w.s16 = static_cast<__nv_bfloat16*>(take(d.bf16_sims ? h * std::size_t(d.np * d.csp) : 0));
  w.t16 = static_cast<__nv_bfloat16*>(take(d.bf16_sims ? h * std::size_t(d.np * d.ctp) : 0));
  if (ws) *ws = w;
  return total;
}

// ---------------------------------------------------------------- device code

// One warp per (padded) row: y = x / max(‖x‖, eps), zero padding; norm[i] = ‖x‖ (when norm is given);
// y16 = y rounded to bfloat16 (when y16 is given).
__global__ void normalise_rows(const float* __restrict__ x, std::int64_t n, std::int64_t c, std::int64_t cp,
                               std::int64_t np, float eps, float* __restrict__ y, float* __restrict__ norm,
                               __nv_bfloat16* __restrict__ y16) {
  const std::int64_t row = (std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= np) return;
  const float* in = x + row * c;
  float sq = 0.0f;
  if (row < n) {
    for (std::int64_t k = lane; k < c; k += 32) sq += in[k] * in[k];
    for (int off = 16; off > 0; off /= 2) sq += __shfl_xor_sync(0xffffffffu, sq, off);
  }
  const float inv = gkd::detail::inv_row_norm(sq, eps);
  for (std::int64_t k = lane; k < cp; k += 32) {
    const float v = row < n && k < c ? in[k] * inv : 0.0f;
    y[row * cp + k] = v;
    if (y16) y16[row * cp + k] = __float2bfloat16_rn(v);
  }
  if (norm && lane == 0) norm[row] = sqrtf(sq);
}

template <class Frag>
__device__ void to_tf32(Frag& f) {
  for (int t = 0; t < f.num_elements; ++t) f.x[t] = wmma::__float_to_tf32(f.x[t]);
}

template <class Frag>
__device__ void split_tf32(const Frag& f, Frag& hi, Frag& lo) {
  for (int t = 0; t < f.num_elements; ++t) {
    const float h = wmma::__float_to_tf32(f.x[t]);
    hi.x[t] = h;
    lo.x[t] = wmma::__float_to_tf32(f.x[t] - h);
  }
}

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using FragBc = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major>;
using FragBr = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;

template <bool X3, class FA, class FB>
__device__ void mma(FragC& acc, const FA& a, const FB& b) {
  if constexpr (X3) {
    FA ah, al;
    FB bh, bl;
    split_tf32(a, ah, al);
    split_tf32(b, bh, bl);
    wmma::mma_sync(acc, al, bh, acc);
    wmma::mma_sync(acc, ah, bl, acc);
    wmma::mma_sync(acc, ah, bh, acc);
  } else {
    FA ah = a;
    FB bh = b;
    to_tf32(ah);
    to_tf32(bh);
    wmma::mma_sync(acc, ah, bh, acc);
  }
}

// out[r][c] = x[i0 + r] · y[j0 + c] for the 64 × 64 tile (padded rows and channels are zero).
template <bool X3>
__device__ void tile_gemm(const float* __restrict__ x, const float* __restrict__ y, std::int64_t ld, std::int64_t i0,
                          std::int64_t j0, float* out) {
  const int warp = int(threadIdx.x / 32);
  FragC acc[4];
  for (int f = 0; f < 4; ++f) wmma::fill_fragment(acc[f], 0.0f);
  const float* xa = x + (i0 + 16 * warp) * ld;
  for (std::int64_t k = 0; k < ld; k += 8) {
    FragA a;
    wmma::load_matrix_sync(a, xa + k, unsigned(ld));
    for (int f = 0; f < 4; ++f) {
      FragBc b;
      wmma::load_matrix_sync(b, y + (j0 + 16 * f) * ld + k, unsigned(ld));
      mma<X3>(acc[f], a, b);
    }
  }
  for (int f = 0; f < 4; ++f) wmma::store_matrix_sync(out + 16 * warp * kLds + 16 * f, acc[f], kLds, wmma::mem_row_major);
}

// Two threads per row: thread 2r + h handles columns 32h … 32h + 31 of every tile.
template <bool InfoNce, bool X3>
__global__ void __launch_bounds__(kThreads) forward_kernel(Dims d, const float* __restrict__ s_hat,
                                                           const float* __restrict__ t_hat,
                                                           float* __restrict__ part) {
  extern __shared__ __align__(128) float smem[];
  float* sa = smem;
  float* sb = smem + kBlock * kLds;
  const std::int64_t i0 = std::int64_t(blockIdx.x) * kBlock;
  const std::int64_t i1 = i0 + kBlock < d.n ? i0 + kBlock : d.n;
  const int r = int(threadIdx.x / 2), half = int(threadIdx.x % 2);
  const std::int64_t i = i0 + r;
  const bool active = i < d.n && d.mask.row_active(i);
  const std::int64_t lo = active ? d.mask.col_begin(i, d.n) : 0, hi = active ? d.mask.col_end(i, d.n) : 0;
  const std::int64_t t0 = d.mask.col_begin(i0, d.n) / kBlock, t1 = (d.mask.col_end(i1 - 1, d.n) + kBlock - 1) / kBlock;
  const std::int64_t per = (t1 - t0 + d.splits - 1) / d.splits, split = blockIdx.y;
  const std::int64_t tb = t0 + split * per, te = tb + per < t1 ? tb + per : t1;
  KlRow<float> kl;
  OnlineLse<float> nce;
  float positive = 0.0f;
  for (std::int64_t j0 = tb * kBlock; j0 < te * kBlock; j0 += kBlock) {
    __syncthreads();
    if constexpr (InfoNce) {
      tile_gemm<X3>(s_hat, t_hat, d.csp, i0, j0, sb);
    } else {
      tile_gemm<X3>(t_hat, t_hat, d.ctp, i0, j0, sa);
      tile_gemm<X3>(s_hat, s_hat, d.csp, i0, j0, sb);
    }
    __syncthreads();
    if (!active) continue;
    for (int c = 32 * half; c < 32 * half + 32; ++c) {
      const std::int64_t j = j0 + c;
      if (j < lo || j >= hi) continue;
      if constexpr (InfoNce) {
        const float v = sb[r * kLds + c] * d.inv_tau;
        nce.add(v);
        if (j == i) positive = v;
      } else {
        if (j != i) kl.add(sa[r * kLds + c] * d.inv_tau, sb[r * kLds + c] * d.inv_tau);
      }
    }
  }
  // merge the two halves of the row (lanes 2r and 2r + 1 of the same warp)
  if constexpr (InfoNce) {
    OnlineLse<float> other;
    other.max = __shfl_xor_sync(0xffffffffu, nce.max, 1);
    other.sum = __shfl_xor_sync(0xffffffffu, nce.sum, 1);
    const float other_pos = __shfl_xor_sync(0xffffffffu, positive, 1);
    if (half == 0 && i < d.n) {
      nce.merge(other);
      float* out = part + (split * d.np + i) * kPartNce;
      out[0] = nce.max;
      out[1] = nce.sum;
      out[2] = r < 32 ? positive : other_pos;  // column i sits in tile column i % 64 = r (0 in other splits)
    }
  } else {
    KlRow<float> other;
    other.t.max = __shfl_xor_sync(0xffffffffu, kl.t.max, 1);
    other.t.sum = __shfl_xor_sync(0xffffffffu, kl.t.sum, 1);
    other.s.max = __shfl_xor_sync(0xffffffffu, kl.s.max, 1);
    other.s.sum = __shfl_xor_sync(0xffffffffu, kl.s.sum, 1);
    other.weighted = __shfl_xor_sync(0xffffffffu, kl.weighted, 1);
    if (half == 0 && i < d.n) {
      kl.merge(other);
      float* out = part + (split * d.np + i) * kPartKl;
      out[0] = kl.t.max;
      out[1] = kl.t.sum;
      out[2] = kl.s.max;
      out[3] = kl.s.sum;
      out[4] = kl.weighted;
    }
  }
}

// One thread per row: merges the splits' states in split order (deterministic).
template <bool InfoNce>
__global__ void merge_rows(Dims d, const float* __restrict__ part, float* __restrict__ row_loss,
                           float* __restrict__ row_lse) {
  const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= d.n) return;
  if constexpr (InfoNce) {
    OnlineLse<float> acc;
    float pos = 0.0f;
    for (std::int64_t s = 0; s < d.splits; ++s) {
      const float* p = part + (s * d.np + i) * kPartNce;
      OnlineLse<float> o;
      o.max = p[0];
      o.sum = p[1];
      acc.merge(o);
      pos += p[2];
    }
    row_lse[i] = acc.value();
    row_loss[i] = acc.empty() ? 0.0f : acc.value() - pos;
  } else {
    KlRow<float> acc;
    for (std::int64_t s = 0; s < d.splits; ++s) {
      const float* p = part + (s * d.np + i) * kPartKl;
      KlRow<float> o;
      o.t.max = p[0];
      o.t.sum = p[1];
      o.s.max = p[2];
      o.s.sum = p[3];
      o.weighted = p[4];
      acc.merge(o);
    }
    row_lse[2 * i] = acc.t.value();
    row_lse[2 * i + 1] = acc.s.value();
    row_loss[i] = acc.loss();
  }
}

// Recomputes the tiles, forms H = (G + Gᵀ)/τ (KL) or G/τ (InfoNCE) in shared memory and accumulates
// H · Y_J (Y = F̂_s for KL, F̂_t for InfoNCE) into the block's dF̂_s rows, kept in shared memory.
template <bool InfoNce, bool X3>
__global__ void __launch_bounds__(kThreads) backward_kernel(Dims d, const float* __restrict__ s_hat,
                                                            const float* __restrict__ t_hat,
                                                            const float* __restrict__ row_lse,
                                                            const float* __restrict__ weight,
                                                            float* __restrict__ ds_part) {
  extern __shared__ __align__(128) float smem[];
  float* sa = smem;
  float* sb = smem + kBlock * kLds;
  float* sacc = smem + 2 * kBlock * kLds;
  const std::int64_t lda = d.csp + 4;
  const std::int64_t i0 = std::int64_t(blockIdx.x) * kBlock;
  const std::int64_t i1 = i0 + kBlock < d.n ? i0 + kBlock : d.n;
  const int r = int(threadIdx.x / 2), half = int(threadIdx.x % 2);
  const std::int64_t i = i0 + r;
  const int warp = int(threadIdx.x / 32);
  for (std::int64_t e = threadIdx.x; e < kBlock * lda; e += kThreads) sacc[e] = 0.0f;
  const std::int64_t t0 = d.mask.col_begin(i0, d.n) / kBlock, t1 = (d.mask.col_end(i1 - 1, d.n) + kBlock - 1) / kBlock;
  const std::int64_t per = (t1 - t0 + d.splits - 1) / d.splits, split = blockIdx.y;
  const std::int64_t tb = t0 + split * per, te = tb + per < t1 ? tb + per : t1;
  const float* y = InfoNce ? t_hat : s_hat;  // csp == ctp for InfoNCE
  for (std::int64_t j0 = tb * kBlock; j0 < te * kBlock; j0 += kBlock) {
    __syncthreads();
    if constexpr (InfoNce) {
      tile_gemm<X3>(s_hat, t_hat, d.csp, i0, j0, sb);
    } else {
      tile_gemm<X3>(t_hat, t_hat, d.ctp, i0, j0, sa);
      tile_gemm<X3>(s_hat, s_hat, d.csp, i0, j0, sb);
    }
    __syncthreads();
    for (int c = 32 * half; c < 32 * half + 32; ++c) {
      const std::int64_t j = j0 + c;
      float h = 0.0f;
      if (i < d.n && j < d.n) {
        const float b = sb[r * kLds + c] * d.inv_tau;
        if constexpr (InfoNce) {
          if (d.mask.nce_edge(i, j, d.n)) h = weight[i] * gkd::detail::infonce_grad_coef(b, row_lse[i], i == j);
        } else {
          const float a = sa[r * kLds + c] * d.inv_tau;
          if (d.mask.edge(i, j, d.n))
            h += weight[i] * gkd::detail::kl_grad_coef(a, b, row_lse[2 * i], row_lse[2 * i + 1]);
          if (d.mask.edge(j, i, d.n))
            h += weight[j] * gkd::detail::kl_grad_coef(a, b, row_lse[2 * j], row_lse[2 * j + 1]);
        }
      }
      sb[r * kLds + c] = h * d.inv_tau;
    }
    __syncthreads();
    // warp w: rows 16w … 16w + 15 of the accumulator, every 16-column fragment
    for (std::int64_t f = 0; f < d.csp; f += 16) {
      FragC acc;
      float* out = sacc + 16 * warp * lda + f;
      wmma::load_matrix_sync(acc, out, unsigned(lda), wmma::mem_row_major);
      for (int k = 0; k < kBlock; k += 8) {
        FragA a;
        FragBr b;
        wmma::load_matrix_sync(a, sb + 16 * warp * kLds + k, kLds);
        wmma::load_matrix_sync(b, y + (j0 + k) * d.csp + f, unsigned(d.csp));
        mma<X3>(acc, a, b);
      }
      wmma::store_matrix_sync(out, acc, unsigned(lda), wmma::mem_row_major);
    }
  }
  __syncthreads();
  for (std::int64_t e = threadIdx.x; e < kBlock * d.csp; e += kThreads) {
    const std::int64_t row = e / d.csp, col = e % d.csp;
    if (i0 + row < d.n) ds_part[(split * d.np + i0 + row) * d.csp + col] = sacc[row * lda + col];
  }
}

// One warp per row: grad = (dŝ − ŝ (ŝ · dŝ)) / ‖x‖ (or dŝ / eps where the norm was clamped).
__global__ void normalise_backward(Dims d, const float* __restrict__ s_hat, const float* __restrict__ s_norm,
                                   const float* __restrict__ ds_part, float eps, float* __restrict__ grad) {
  const std::int64_t row = (std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= d.n) return;
  const float* sh = s_hat + row * d.csp;
  auto g = [&](std::int64_t k) {  // Σ over the column splits, in split order
    float v = 0.0f;
    for (std::int64_t s = 0; s < d.splits; ++s) v += ds_part[(s * d.np + row) * d.csp + k];
    return v;
  };
  float dot = 0.0f;
  for (std::int64_t k = lane; k < d.cs; k += 32) dot += g(k) * sh[k];
  for (int off = 16; off > 0; off /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, off);
  const float nrm = s_norm[row];
  const bool clamped = !(nrm >= eps && nrm > 0.0f);
  for (std::int64_t k = lane; k < d.cs; k += 32)
    grad[row * d.cs + k] = clamped ? g(k) / (eps > 0.0f ? eps : 1.0f) : (g(k) - sh[k] * dot) / nrm;
}

// weight[i] = ∂L/∂loss_i.
__global__ void row_weights(std::int64_t n, const float* __restrict__ grad_rows, float scale, float* __restrict__ w) {
  const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) w[i] = grad_rows ? grad_rows[i] : scale;
}

// One block: loss[0] = Σ row_loss · scale, summed in double in a fixed order (deterministic).
__global__ void reduce_rows(std::int64_t n, const float* __restrict__ row_loss, double scale, float* __restrict__ loss) {
  __shared__ double part[1024];
  double s = 0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) s += double(row_loss[i]);
  part[threadIdx.x] = s;
  __syncthreads();
  for (unsigned w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) loss[0] = float(part[0] * scale);
}

// ---------------------------------------------------------------- panels: per-row kernels

// One block per panel row (global row i = row0 + blockIdx.x; its columns are the graph's nodes col0 …
// col0 + group − 1), from the raw similarities a (teacher, KL only; nullptr for InfoNCE) and b (student, or
// student-teacher for InfoNCE):
//   Stats: the row's log-sum-exps and loss into lse_out and row_loss, as merge_rows writes them;
//   Coefficients: b becomes G[i, j] = w_i ∂loss_i/∂b_ij / τ, with the log-sum-exps just computed (Stats) or
//   read from lse_in.
template <bool InfoNce, bool Stats, bool Coefficients>
__global__ void __launch_bounds__(kRowThreads) panel_rows(Dims d, std::int64_t row0, std::int64_t col0,
                                                          const float* __restrict__ a, float* __restrict__ b,
                                                          float* __restrict__ row_loss, float* __restrict__ lse_out,
                                                          const float* __restrict__ lse_in,
                                                          const float* __restrict__ weight) {
  const std::int64_t r = blockIdx.x, i = row0 + r;
  const float* ar = InfoNce ? nullptr : a + r * d.panel_ld;
  float* br = b + r * d.panel_ld;
  __shared__ float lse[2];  // KL: teacher, student; InfoNCE: lse[0]
  if constexpr (Stats) {
    if constexpr (InfoNce) {
      OnlineLse<float> acc;
      float positive = 0.0f;
      for (std::int64_t c = threadIdx.x; c < d.group; c += kRowThreads) {
        const float v = br[c] * d.inv_tau;
        acc.add(v);
        if (col0 + c == i) positive = v;
      }
      __shared__ typename cub::BlockReduce<OnlineLse<float>, kRowThreads>::TempStorage lse_temp;
      __shared__ typename cub::BlockReduce<float, kRowThreads>::TempStorage positive_temp;
      acc = cub::BlockReduce<OnlineLse<float>, kRowThreads>(lse_temp).Reduce(acc, MergeStates{});
      positive = cub::BlockReduce<float, kRowThreads>(positive_temp).Sum(positive);
      if (threadIdx.x == 0) {
        lse[0] = lse_out[i] = acc.value();
        row_loss[i] = acc.empty() ? 0.0f : acc.value() - positive;
      }
    } else {
      KlRow<float> acc;
      for (std::int64_t c = threadIdx.x; c < d.group; c += kRowThreads)
        if (col0 + c != i) acc.add(ar[c] * d.inv_tau, br[c] * d.inv_tau);
      __shared__ typename cub::BlockReduce<KlRow<float>, kRowThreads>::TempStorage temp;
      acc = cub::BlockReduce<KlRow<float>, kRowThreads>(temp).Reduce(acc, MergeStates{});
      if (threadIdx.x == 0) {
        lse[0] = lse_out[2 * i] = acc.t.value();
        lse[1] = lse_out[2 * i + 1] = acc.s.value();
        row_loss[i] = acc.loss();
      }
    }
  } else if (threadIdx.x == 0) {
    lse[0] = lse_in[InfoNce ? i : 2 * i];
    lse[1] = InfoNce ? 0.0f : lse_in[2 * i + 1];
  }
  if constexpr (Coefficients) {
    __syncthreads();
    const float w = weight[i] * d.inv_tau, lse_a = lse[0], lse_b = lse[1];
    for (std::int64_t c = threadIdx.x; c < d.group; c += kRowThreads) {
      if constexpr (InfoNce)
        br[c] = w * gkd::detail::infonce_grad_coef(br[c] * d.inv_tau, lse_a, col0 + c == i);
      else
        br[c] = col0 + c == i ? 0.0f : w * gkd::detail::kl_grad_coef(ar[c] * d.inv_tau, br[c] * d.inv_tau, lse_a, lse_b);
    }
  }
}

// ---------------------------------------------------------------- SmallGraphs: one block per graph

// gram [rows × (rows + 1)] = X Yᵀ over the graph's raw rows (x, y: its first row, `channels` per row; `same`:
// the Gram of x alone, y, ys and sq_y unused), staged through shared memory a chunk of channels at a time;
// sq_x[r] (and sq_y[r]) = ‖row r‖². Thread (ty, tx) = (t / 16, t % 16) owns the F × F entries
// (ty + 16a, tx + 16b).
template <int F>
__device__ void small_gram(const Dims& d, bool same, const float* __restrict__ x, const float* __restrict__ y,
                           std::int64_t channels, float* xs, float* ys, float* gram, float* sq_x, float* sq_y) {
  const int g = int(d.group), chunk = d.small_chunk, lds = chunk + 1, ldg = 16 * F + 1;
  const int tid = int(threadIdx.x), ty = tid / 16, tx = tid % 16;
  float acc[F][F] = {};
  float sum_x = 0.0f, sum_y = 0.0f;
  for (std::int64_t k0 = 0; k0 < channels; k0 += chunk) {
    const int width = int(channels - k0 < chunk ? channels - k0 : chunk);
    __syncthreads();
    for (int e = tid; e < 16 * F * chunk; e += kSmallThreads) {
      const int r = e / chunk, k = e % chunk;
      const bool in = r < g && k < width;
      xs[r * lds + k] = in ? x[r * channels + k0 + k] : 0.0f;
      if (!same) ys[r * lds + k] = in ? y[r * channels + k0 + k] : 0.0f;
    }
    __syncthreads();
    if (tid < g)
      for (int k = 0; k < width; ++k) {
        sum_x += xs[tid * lds + k] * xs[tid * lds + k];
        if (!same) sum_y += ys[tid * lds + k] * ys[tid * lds + k];
      }
    const float* yb = same ? xs : ys;
#pragma unroll 4
    for (int k = 0; k < width; ++k) {
      float xv[F], yv[F];
#pragma unroll
      for (int a = 0; a < F; ++a) xv[a] = xs[(ty + 16 * a) * lds + k];
#pragma unroll
      for (int b = 0; b < F; ++b) yv[b] = yb[(tx + 16 * b) * lds + k];
#pragma unroll
      for (int a = 0; a < F; ++a)
#pragma unroll
        for (int b = 0; b < F; ++b) acc[a][b] = fmaf(xv[a], yv[b], acc[a][b]);
    }
  }
#pragma unroll
  for (int a = 0; a < F; ++a)
#pragma unroll
    for (int b = 0; b < F; ++b) gram[(ty + 16 * a) * ldg + tx + 16 * b] = acc[a][b];
  if (tid < g) {
    sq_x[tid] = sum_x;
    if (!same) sq_y[tid] = sum_y;
  }
}

// What one SmallGraphs launch reads and writes (device pointers; see small_graphs).
struct SmallArgs {
  const float* student;
  const float* teacher;
  float eps;
  float* row_loss;
  float* lse_out;
  const float* lse_in;
  const float* grad_rows;
  float scale;
  float* grad;
};

// One block per graph (blockIdx.x: the graph of rows blockIdx.x · group …), F = rows held / 16. In FP32 on
// CUDA cores, from the raw inputs (no normalised copies): the Grams, then one thread per row runs the
// per-graph mathematics of gkd/losses/detail/graph_kd_small.hpp.
//   Statistics (p.lse_out given): row_loss and the row log-sum-exps into lse_out, as merge_rows writes them.
//   Gradient (p.grad given): grad [rows, C_s] = ∂L/∂F_s with the row weights grad_rows[i] (or `scale` where
//   grad_rows is null), from the log-sum-exps just computed, or from lse_in.
template <bool InfoNce, int F>
__global__ void __launch_bounds__(kSmallThreads) small_graphs(Dims d, SmallArgs p) {
  extern __shared__ __align__(16) float smem[];
  constexpr int rows = 16 * F, ldg = rows + 1;
  const int g = int(d.group), chunk = d.small_chunk, lds = chunk + 1, tid = int(threadIdx.x);
  float* ga = smem;                          // teacher Gram (KL), then G
  float* gb = ga + rows * ldg;               // student Gram (KL) or S Tᵀ (InfoNCE), then M
  float* xs = gb + rows * ldg;               // a staged chunk of rows
  float* ys = xs + rows * lds;               // InfoNCE: a second one
  float* vec = ys + (InfoNce ? rows * lds : 0);
  float *sq_s = vec, *sq_t = vec + rows, *inv_s = vec + 2 * rows, *inv_t = vec + 3 * rows, *norm_s = vec + 4 * rows,
        *lse_a = vec + 5 * rows, *lse_b = vec + 6 * rows, *self = vec + 7 * rows;
  const std::int64_t first = std::int64_t(blockIdx.x) * g;
  const float* s = p.student + first * d.cs;
  const float* t = p.teacher + first * d.ct;
  if constexpr (InfoNce) {  // (student and teacher may be the same array)
    small_gram<F>(d, false, s, t, d.cs, xs, ys, gb, sq_s, sq_t);
  } else {
    small_gram<F>(d, true, t, nullptr, d.ct, xs, nullptr, ga, sq_t, nullptr);
    small_gram<F>(d, true, s, nullptr, d.cs, xs, nullptr, gb, sq_s, nullptr);
  }
  __syncthreads();
  if (tid < g) {
    inv_s[tid] = gkd::detail::inv_row_norm(sq_s[tid], p.eps);
    inv_t[tid] = gkd::detail::inv_row_norm(sq_t[tid], p.eps);
    norm_s[tid] = sqrtf(sq_s[tid]);
  }
  __syncthreads();
  const gkd::detail::SmallGraph<float> graph{.size = g, .ld = ldg, .first = first, .n = d.n, .mask = d.mask,
                                             .inv_tau = d.inv_tau, .nce = InfoNce, .eps = p.eps, .gram_a = ga,
                                             .gram_b = gb, .inv_s = inv_s, .inv_t = inv_t, .norm_s = norm_s};
  const std::int64_t row = first + tid;
  if (tid < g && p.lse_out) {
    if constexpr (InfoNce) {
      const auto r = graph.nce_row(tid);
      p.row_loss[row] = r.loss();
      p.lse_out[row] = lse_b[tid] = r.lse.value();
    } else {
      const auto r = graph.kl_row(tid);
      p.row_loss[row] = r.loss();
      p.lse_out[2 * row] = lse_a[tid] = r.t.value();
      p.lse_out[2 * row + 1] = lse_b[tid] = r.s.value();
    }
  } else if (tid < g) {
    lse_a[tid] = InfoNce ? 0.0f : p.lse_in[2 * row];
    lse_b[tid] = InfoNce ? p.lse_in[row] : p.lse_in[2 * row + 1];
  }
  if (!p.grad) return;
  __syncthreads();
  if (tid < g) graph.coefficients(tid, lse_a[tid], lse_b[tid], p.grad_rows ? p.grad_rows[row] : p.scale, ga);
  __syncthreads();
  if (tid < g) self[tid] = graph.gradient_row(tid, ga, gb + tid * ldg);
  // grad = M Y + diag(self) X (Y: the student rows for KL, the teacher rows for InfoNCE), a chunk at a time;
  // a warp's 32 consecutive outputs share their row (chunk is a multiple of 32)
  const float* y = InfoNce ? t : s;
  const float* xc = InfoNce ? ys : xs;
  for (std::int64_t k0 = 0; k0 < d.cs; k0 += chunk) {
    const int width = int(d.cs - k0 < chunk ? d.cs - k0 : chunk);
    __syncthreads();
    for (int e = tid; e < g * chunk; e += kSmallThreads) {
      const int r = e / chunk, k = e % chunk;
      xs[r * lds + k] = k < width ? y[r * d.cs + k0 + k] : 0.0f;
      if (InfoNce) ys[r * lds + k] = k < width ? s[r * d.cs + k0 + k] : 0.0f;
    }
    __syncthreads();
    for (int e = tid; e < g * chunk; e += kSmallThreads) {
      const int r = e / chunk, k = e % chunk;
      if (k >= width) continue;
      float v = self[r] * xc[r * lds + k];
      for (int j = 0; j < g; ++j) v = fmaf(gb[r * ldg + j], xs[j * lds + k], v);
      p.grad[(first + r) * d.cs + k0 + k] = v;
    }
  }
}

// ---------------------------------------------------------------- host side

unsigned blocks_for(std::int64_t work, int per_block) { return unsigned((work + per_block - 1) / per_block); }

void normalise_inputs(const Dims& d, const float* student, const float* teacher, float eps, const Workspace& ws,
                      cudaStream_t stream) {
  constexpr int threads = 256;
  normalise_rows<<<blocks_for(d.np * 32, threads), threads, 0, stream>>>(student, d.n, d.cs, d.csp, d.np, eps,
                                                                          ws.s_hat, ws.s_norm, ws.s16);
  GKD_GRAPH_KD_CUDA(cudaGetLastError());
  normalise_rows<<<blocks_for(d.np * 32, threads), threads, 0, stream>>>(teacher, d.n, d.ct, d.ctp, d.np, eps,
                                                                          ws.t_hat, nullptr, ws.t16);
  GKD_GRAPH_KD_CUDA(cudaGetLastError());
}

// Tiles: the forward kernel over every row block and column split, then the splits' merge per row.
void launch_forward(const Dims& d, const Workspace& ws, float* row_loss, float* row_lse, bool x3, cudaStream_t stream) {
  const std::size_t smem = sizeof(float) * 2 * kBlock * kLds;
  const dim3 grid(unsigned(d.np / kBlock), unsigned(d.splits));
  if (d.nce && x3) forward_kernel<true, true><<<grid, kThreads, smem, stream>>>(d, ws.s_hat, ws.t_hat, ws.part);
  if (d.nce && !x3) forward_kernel<true, false><<<grid, kThreads, smem, stream>>>(d, ws.s_hat, ws.t_hat, ws.part);
  if (!d.nce && x3) forward_kernel<false, true><<<grid, kThreads, smem, stream>>>(d, ws.s_hat, ws.t_hat, ws.part);
  if (!d.nce && !x3) forward_kernel<false, false><<<grid, kThreads, smem, stream>>>(d, ws.s_hat, ws.t_hat, ws.part);
  GKD_GRAPH_KD_CUDA(cudaGetLastError());
  if (d.nce)
    merge_rows<true><<<blocks_for(d.n, 256), 256, 0, stream>>>(d, ws.part, row_loss, row_lse);
  else
    merge_rows<false><<<blocks_for(d.n, 256), 256, 0, stream>>>(d, ws.part, row_loss, row_lse);
  GKD_GRAPH_KD_CUDA(cudaGetLastError());
}

template <bool InfoNce, bool X3>
void launch_backward(const Dims& d, const Workspace& ws, const float* row_lse, cudaStream_t stream) {
  const std::size_t smem = tile_backward_smem(d.csp);
  const int limit = smem_limit();
  GKD_CHECK(smem <= std::size_t(limit), "cuda::GraphKDBackward",
            "the Tiles schedule with student_channels " << d.cs << " needs " << smem
                << " bytes of shared memory per block, the device allows " << limit << " (at most about "
                << (limit / 4 - 2 * kBlock * kLds) / kBlock - 4 << " channels; the Panels schedule has no such limit)");
  GKD_GRAPH_KD_CUDA(cudaFuncSetAttribute(backward_kernel<InfoNce, X3>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         int(smem)));
  const dim3 grid(unsigned(d.np / kBlock), unsigned(d.splits));
  backward_kernel<InfoNce, X3><<<grid, kThreads, smem, stream>>>(d, ws.s_hat, ws.t_hat, row_lse, ws.weight, ws.part);
  GKD_GRAPH_KD_CUDA(cudaGetLastError());
}

// SmallGraphs: one launch over every graph (statistics where p.lse_out is given, the gradient where p.grad is).
template <bool InfoNce, int F>
void launch_small(const Dims& d, const SmallArgs& p, cudaStream_t stream) {
  const std::size_t smem = small_smem(d);
  const int limit = smem_limit();
  GKD_CHECK(smem <= std::size_t(limit), "cuda::graph_kd",
            "the SmallGraphs schedule with graphs of " << d.group << " nodes needs " << smem
                << " bytes of shared memory per block, the device allows " << limit << " (use Tiles or Panels)");
  GKD_GRAPH_KD_CUDA(
      cudaFuncSetAttribute(small_graphs<InfoNce, F>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  small_graphs<InfoNce, F><<<unsigned(d.n / d.group), kSmallThreads, smem, stream>>>(d, p);
  GKD_GRAPH_KD_CUDA(cudaGetLastError());
}

template <bool InfoNce>
void run_small_graphs(const Dims& d, const SmallArgs& p, cudaStream_t stream) {
  switch (d.small_rows) {
    case 16: return launch_small<InfoNce, 1>(d, p, stream);
    case 32: return launch_small<InfoNce, 2>(d, p, stream);
    case 64: return launch_small<InfoNce, 4>(d, p, stream);
    default: return launch_small<InfoNce, 8>(d, p, stream);
  }
}

void run_small_graphs(const Dims& d, const SmallArgs& p, cudaStream_t stream) {
  if (d.nce) run_small_graphs<true>(d, p, stream);
  else run_small_graphs<false>(d, p, stream);
}

// Panels: the similarity rows of panel rows [p0, p0 + rows) against their graph's nodes [g0, g0 + group):
// teacher into panel_a (KL only), student (or student-teacher for InfoNCE) into panel_b.
void panel_similarities(const Dims& d, const Workspace& ws, std::int64_t p0, std::int64_t rows, std::int64_t g0,
                        cudaStream_t stream) {
  const cublasComputeType_t compute = d.fp32_gemm || d.bf16_sims ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
  const cudaDataType_t type = d.bf16_sims ? CUDA_R_16BF : CUDA_R_32F;
  auto row_s = [&](std::int64_t row) -> const void* {  // normalised student row, float32 or bf16
    return d.bf16_sims ? static_cast<const void*>(ws.s16 + row * d.csp) : ws.s_hat + row * d.csp;
  };
  auto row_t = [&](std::int64_t row) -> const void* {
    return d.bf16_sims ? static_cast<const void*>(ws.t16 + row * d.ctp) : ws.t_hat + row * d.ctp;
  };
  using blas::gemm_row_major;
  if (d.nce) {
    gemm_row_major(stream, compute, type, false, true, rows, d.group, d.cs, 1.0f, row_s(p0), d.csp, row_t(g0), d.ctp,
                   0.0f, ws.panel_b, d.panel_ld);
    return;
  }
  gemm_row_major(stream, compute, type, false, true, rows, d.group, d.ct, 1.0f, row_t(p0), d.ctp, row_t(g0), d.ctp,
                 0.0f, ws.panel_a, d.panel_ld);
  gemm_row_major(stream, compute, type, false, true, rows, d.group, d.cs, 1.0f, row_s(p0), d.csp, row_s(g0), d.csp,
                 0.0f, ws.panel_b, d.panel_ld);
}

// Calls visit(p0, rows, g0) for every panel of every graph, in order.
template <class Visit>
void for_each_panel(const Dims& d, Visit visit) {
  for (std::int64_t g0 = 0; g0 < d.n; g0 += d.group)
    for (std::int64_t p0 = g0; p0 < g0 + d.group; p0 += d.panel_rows)
      visit(p0, std::min(d.panel_rows, g0 + d.group - p0), g0);
}

template <bool InfoNce>
void launch_panel_rows(const Dims& d, std::int64_t p0, std::int64_t rows, std::int64_t g0, const Workspace& ws,
                       float* row_loss, float* lse_out, const float* lse_in, bool gradient, cudaStream_t stream) {
  const float* a = InfoNce ? nullptr : ws.panel_a;
  const dim3 grid{unsigned(rows)};
  if (lse_out && gradient)
    panel_rows<InfoNce, true, true><<<grid, kRowThreads, 0, stream>>>(d, p0, g0, a, ws.panel_b, row_loss, lse_out,
                                                                       nullptr, ws.weight);
  else if (lse_out)
    panel_rows<InfoNce, true, false><<<grid, kRowThreads, 0, stream>>>(d, p0, g0, a, ws.panel_b, row_loss, lse_out,
                                                                        nullptr, nullptr);
  else
    panel_rows<InfoNce, false, true><<<grid, kRowThreads, 0, stream>>>(d, p0, g0, a, ws.panel_b, nullptr, nullptr,
                                                                        lse_in, ws.weight);
  GKD_GRAPH_KD_CUDA(cudaGetLastError());
}

// Every panel: the similarities, then the row kernel (row statistics into row_loss and lse_out when lse_out
// is given; with `gradient`, the coefficients G, from lse_out or lse_in, weighted by ws.weight) and the
// gradient GEMMs into ws.part [np, csp]: dF̂_s[P] += G_P Y[graph] (Y = F̂_s, or F̂_t for InfoNCE) and, for
// KL, dF̂_s[graph] += G_Pᵀ F̂_s[P].
void run_panels(const Dims& d, const Workspace& ws, float* row_loss, float* lse_out, const float* lse_in,
                bool gradient, cudaStream_t stream) {
  if (gradient) GKD_GRAPH_KD_CUDA(cudaMemsetAsync(ws.part, 0, sizeof(float) * std::size_t(d.np * d.csp), stream));
  const cublasComputeType_t compute = d.fp32_gemm ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
  const float* y = d.nce ? ws.t_hat : ws.s_hat;
  const std::int64_t ldy = d.nce ? d.ctp : d.csp;
  for_each_panel(d, [&](std::int64_t p0, std::int64_t rows, std::int64_t g0) {
    panel_similarities(d, ws, p0, rows, g0, stream);
    if (d.nce) launch_panel_rows<true>(d, p0, rows, g0, ws, row_loss, lse_out, lse_in, gradient, stream);
    else launch_panel_rows<false>(d, p0, rows, g0, ws, row_loss, lse_out, lse_in, gradient, stream);
    if (!gradient) return;
    blas::gemm_row_major(stream, compute, CUDA_R_32F, false, false, rows, d.cs, d.group, 1.0f, ws.panel_b, d.panel_ld,
                         y + g0 * ldy, ldy, 1.0f, ws.part + p0 * d.csp, d.csp);
    if (!d.nce)
      blas::gemm_row_major(stream, compute, CUDA_R_32F, true, false, d.group, d.cs, rows, 1.0f, ws.panel_b, d.panel_ld,
                           ws.s_hat + p0 * d.csp, d.csp, 1.0f, ws.part + g0 * d.csp, d.csp);
  });
}

}  // namespace

void validate(const GraphKDConfig& c) {
  constexpr const char* op = "cuda::graph_kd";
  GKD_CHECK(c.n >= 1 && c.student_channels >= 1 && c.teacher_channels >= 1, op,
            "needs non-empty features, got n " << c.n << ", student_channels " << c.student_channels
                                               << ", teacher_channels " << c.teacher_channels);
  GKD_CHECK(c.form != GraphKDForm::InfoNCE || c.student_channels == c.teacher_channels, op,
            "InfoNCE needs equal student and teacher widths, got student_channels "
                << c.student_channels << " and teacher_channels " << c.teacher_channels);
  GKD_CHECK(c.temperature > 0 && c.temperature < 3.0e38f, op,
            "temperature must be positive and finite, got " << c.temperature);
  GKD_CHECK(c.eps >= 0, op, "eps must be non-negative, got " << c.eps);
  GKD_CHECK(c.panel_rows >= 0, op, "panel_rows must be non-negative (0: the default), got " << c.panel_rows);
  if (c.mask != GraphKDMask::Full)
    GKD_CHECK(c.group_size >= 1 && c.n % c.group_size == 0, op,
              (c.mask == GraphKDMask::Star ? "star" : "block_diagonal")
                  << " mask group_size " << c.group_size << " must be >= 1 and divide n = " << c.n);
  GKD_CHECK(c.schedule != Schedule::Panels || c.mask != GraphKDMask::Star, op,
            "the Panels schedule needs a Full or BlockDiagonal mask, got a star mask (use Tiles or Auto)");
  GKD_CHECK(c.schedule != Schedule::SmallGraphs || graph_size(c) <= kSmallGraphsMaxNodes, op,
            "the SmallGraphs schedule holds graphs of at most " << kSmallGraphsMaxNodes << " nodes, got "
                << (c.mask == GraphKDMask::Full ? "a Full mask over n = " : "group_size ") << graph_size(c)
                << " (use Auto, Tiles or Panels)");
  GKD_CHECK(c.precision != GraphKDPrecision::BF16 || resolve(c) != Schedule::Tiles, op,
            "BF16 precision runs on the Panels and SmallGraphs schedules only, not on the Tiles schedule (a star mask "
            "with group_size above "
                << kSmallGraphsMaxNodes << " runs on Tiles; use TF32 there)");
}

std::int64_t graph_kd_rows(const GraphKDConfig& c) {
  validate(c);
  const std::int64_t active = c.mask == GraphKDMask::Star ? c.n / c.group_size : c.n;
  if (c.form == GraphKDForm::InfoNCE) return active;
  return graph_size(c) > 1 ? active : 0;
}

Schedule graph_kd_schedule(const GraphKDConfig& c) {
  validate(c);
  return resolve(c);
}

namespace {

// ∂L/∂loss_i of every row for the upstream gradient of a Mean or Sum loss (reduction None: per-row weights).
float row_weight(const GraphKDConfig& c, float grad_output) {
  const std::int64_t rows = graph_kd_rows(c);
  return c.reduction == GraphKDReduction::Sum ? grad_output : rows > 0 ? float(double(grad_output) / double(rows)) : 0.0f;
}

// weight[i] = ∂L/∂loss_i: grad_rows (reduction None) or row_weight.
void fill_row_weights(const GraphKDConfig& c, const Dims& d, const float* grad_rows, float grad_output,
                      const Workspace& ws, cudaStream_t stream) {
  row_weights<<<blocks_for(d.n, 256), 256, 0, stream>>>(d.n, c.reduction == GraphKDReduction::None ? grad_rows : nullptr,
                                                      row_weight(c, grad_output), ws.weight);
  GKD_GRAPH_KD_CUDA(cudaGetLastError());
}

void reduce_loss(const GraphKDConfig& c, const Dims& d, const float* row_loss, float* loss, cudaStream_t stream) {
  if (!loss || c.reduction == GraphKDReduction::None) return;
  const std::int64_t rows = graph_kd_rows(c);
  const double scale = c.reduction == GraphKDReduction::Sum ? 1.0 : (rows > 0 ? 1.0 / double(rows) : 0.0);
  reduce_rows<<<1, 1024, 0, stream>>>(d.n, row_loss, scale, loss);
  GKD_GRAPH_KD_CUDA(cudaGetLastError());
}

void student_gradient(const Dims& d, const Workspace& ws, float eps, float* grad_student, cudaStream_t stream) {
  normalise_backward<<<blocks_for(d.n * 32, 256), 256, 0, stream>>>(d, ws.s_hat, ws.s_norm, ws.part, eps, grad_student);
  GKD_GRAPH_KD_CUDA(cudaGetLastError());
}

}  // namespace

GraphKDForward::GraphKDForward(const GraphKDConfig& config) : config_(config) { validate(config_); }

std::size_t GraphKDForward::workspace_bytes() const { return workspace_layout(make_dims(config_), false, nullptr, nullptr); }

std::size_t GraphKDForward::gradient_workspace_bytes() const {
  return workspace_layout(make_dims(config_), true, nullptr, nullptr);  // the backward's layout covers the forward's
}

std::size_t GraphKDForward::row_lse_count() const {
  return std::size_t(config_.form == GraphKDForm::KL ? 2 * config_.n : config_.n);
}

void GraphKDForward::run(const float* student, const float* teacher, float* row_loss, float* row_lse, float* loss,
                         void* workspace, void* stream_ptr) const {
  const Dims d = make_dims(config_);
  GKD_CHECK(student && teacher && row_loss && row_lse && (workspace || d.small), "cuda::GraphKDForward",
            "student, teacher, row_loss, row_lse and workspace (where workspace_bytes() > 0) must be device pointers, "
            "got a null pointer");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (d.small) {
    run_small_graphs(d, {student, teacher, config_.eps, row_loss, row_lse, nullptr, nullptr, 0.0f, nullptr}, stream);
    return reduce_loss(config_, d, row_loss, loss, stream);
  }
  Workspace ws{};
  workspace_layout(d, false, workspace, &ws);
  normalise_inputs(d, student, teacher, config_.eps, ws, stream);
  if (d.panels) run_panels(d, ws, row_loss, row_lse, nullptr, false, stream);
  else launch_forward(d, ws, row_loss, row_lse, config_.precision == GraphKDPrecision::TF32x3, stream);
  reduce_loss(config_, d, row_loss, loss, stream);
}

void GraphKDForward::run_with_gradient(const float* student, const float* teacher, float* row_loss, float* row_lse,
                                       float* loss, float* grad_student, void* workspace, void* stream_ptr) const {
  GKD_CHECK(config_.reduction != GraphKDReduction::None, "cuda::GraphKDForward",
            "run_with_gradient needs a Mean or Sum reduction (for reduction None, run GraphKDBackward with grad_rows)");
  const Dims d = make_dims(config_);
  GKD_CHECK(student && teacher && row_loss && row_lse && grad_student && (workspace || d.small), "cuda::GraphKDForward",
            "student, teacher, row_loss, row_lse, grad_student and workspace (where gradient_workspace_bytes() > 0) "
            "must be device pointers, got a null pointer");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (d.small) {  // one launch: statistics and gradient
    run_small_graphs(d,
                     {student, teacher, config_.eps, row_loss, row_lse, nullptr, nullptr, row_weight(config_, 1.0f),
                      grad_student},
                     stream);
    return reduce_loss(config_, d, row_loss, loss, stream);
  }
  if (!d.panels) {  // the tiles recompute in their backward anyway
    run(student, teacher, row_loss, row_lse, loss, workspace, stream_ptr);
    GraphKDBackward(config_).run(student, teacher, row_lse, nullptr, 1.0f, grad_student, workspace, stream_ptr);
    return;
  }
  Workspace ws{};
  workspace_layout(d, true, workspace, &ws);
  normalise_inputs(d, student, teacher, config_.eps, ws, stream);
  fill_row_weights(config_, d, nullptr, 1.0f, ws, stream);
  run_panels(d, ws, row_loss, row_lse, nullptr, true, stream);
  reduce_loss(config_, d, row_loss, loss, stream);
  student_gradient(d, ws, config_.eps, grad_student, stream);
}

GraphKDBackward::GraphKDBackward(const GraphKDConfig& config) : config_(config) { validate(config_); }

std::size_t GraphKDBackward::workspace_bytes() const { return workspace_layout(make_dims(config_), true, nullptr, nullptr); }

void GraphKDBackward::run(const float* student, const float* teacher, const float* row_lse, const float* grad_rows,
                          float grad_output, float* grad_student, void* workspace, void* stream_ptr) const {
  const Dims d = make_dims(config_);
  GKD_CHECK(student && teacher && row_lse && grad_student && (workspace || d.small), "cuda::GraphKDBackward",
            "student, teacher, row_lse, grad_student and workspace (where workspace_bytes() > 0) must be device "
            "pointers, got a null pointer");
  GKD_CHECK(config_.reduction != GraphKDReduction::None || grad_rows, "cuda::GraphKDBackward",
            "reduction None needs grad_rows (dL/dloss_i for each of the " << config_.n << " rows)");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (d.small) {
    const bool per_row = config_.reduction == GraphKDReduction::None;
    return run_small_graphs(d,
                            {student, teacher, config_.eps, nullptr, nullptr, row_lse, per_row ? grad_rows : nullptr,
                             row_weight(config_, grad_output), grad_student},
                            stream);
  }
  Workspace ws{};
  workspace_layout(d, true, workspace, &ws);
  normalise_inputs(d, student, teacher, config_.eps, ws, stream);
  fill_row_weights(config_, d, grad_rows, grad_output, ws, stream);
  const bool nce = d.nce, x3 = config_.precision == GraphKDPrecision::TF32x3;
  if (d.panels) run_panels(d, ws, nullptr, nullptr, row_lse, true, stream);
  else if (nce && x3) launch_backward<true, true>(d, ws, row_lse, stream);
  else if (nce && !x3) launch_backward<true, false>(d, ws, row_lse, stream);
  else if (!nce && x3) launch_backward<false, true>(d, ws, row_lse, stream);
  else launch_backward<false, false>(d, ws, row_lse, stream);
  student_gradient(d, ws, config_.eps, grad_student, stream);
}

}  // namespace gkd::cuda
