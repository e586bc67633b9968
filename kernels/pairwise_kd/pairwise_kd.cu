// SPDX-License-Identifier: Apache-2.0
// Tiled SKD similarity MSE and CIRKD pixel-pair KL on tensor cores (declared in gkd/cuda/pairwise_kd.hpp).
//
// Scheduling: one block of 4 warps per (image, 64-row tile); it walks the 64-column tiles of the
// other image(s). Per column tile, the student and teacher similarity tiles (64 × 64) are computed
// with wmma TF32 m16n16k8 (K in chunks of 16 channels staged through shared memory, fp32
// accumulation), the per-element mathematics of gkd/losses/detail/pairwise_tile.hpp turns them into
// gradient coefficients G in shared memory, and the block adds G · F_cols to its own rows of the
// normalised-gradient workspace on tensor cores too (no atomics: every row tile has one owner).
// Features are L2-normalised into zero-padded workspaces first (N to a multiple of 64, C to 16),
// and padded rows / columns are masked in the element phase. CIRKD runs three kernels: row
// statistics (online log-sum-exp and KL), row gradients, column gradients (the same kernel with the
// roles of rows and columns swapped). Loss partials are per block in double, summed in a fixed order.
//
// The Panels schedule (large N, gkd/cuda/schedule.hpp) instead has cuBLAS compute panels of rows of
// the student and teacher similarity matrices of one image (pair) into the workspace; one block per
// panel row reduces its row (loss partial, and for CIRKD the row's log-sum-exps) and overwrites the
// student panel with the gradient coefficients G; the gradient is then G · Ŝ (and Gᵀ · Ŝ_panel for
// CIRKD's columns) through cuBLAS.
#include <cub/block/block_reduce.cuh>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "gkd/cuda/pairwise_kd.hpp"
#include "gkd/losses/detail/pairwise_tile.hpp"
#include "pairwise_kd/pkd_check.hpp"
#include "runtime/blas.hpp"

namespace gkd::cuda {
namespace {

using namespace nvcuda;

constexpr int kTile = 64, kChunk = 16, kThreads = 128, kPadK = kChunk + 4, kPadT = kTile + 4;
constexpr std::int64_t kPanelMinNodes = 2048;
constexpr int kRowThreads = 256;

struct Geometry {
  std::int64_t batch, nodes, np, cs, ct, csp, ctp;
  std::int64_t splits;  // the column tiles of each row tile are split over this many blocks
  bool panels;          // Panels schedule (splits = 1)
  bool bf16;            // panels: similarity GEMMs on bf16 copies of the normalised rows
  std::int64_t panel_rows, panel_ld;
  [[nodiscard]] __host__ __device__ std::int64_t tiles() const { return np / kTile; }
  [[nodiscard]] __host__ __device__ std::int64_t grad_stride() const { return batch * np * csp; }
};

constexpr int kMergeBlocks = 512;

std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

// Enough blocks to fill the GPU (about 4 resident blocks of 45 KiB shared memory per SM): small
// problems split every row tile's column walk over up to 16 blocks, each with its own gradient slice.
Geometry geometry(const PairwiseShape& s, bool kl, const PairwiseArgs& args) {
  const Schedule schedule = args.schedule;
  const bool bf16 = args.bf16;
  Geometry g{s.batch, s.nodes, round_up(s.nodes, kTile), s.cs, s.ct, round_up(s.cs, kChunk), round_up(s.ct, kChunk), 1,
             false, bf16, 0, 0};
  g.panels = schedule == Schedule::Panels || (schedule == Schedule::Auto && (bf16 || s.nodes >= kPanelMinNodes));
  g.panel_ld = round_up(s.nodes, 32);
  g.panel_rows = std::min(args.panel_rows > 0 ? args.panel_rows : default_panel_rows(g.panel_ld, 2), s.nodes);
  if (g.panels) return g;
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    (void)cudaGetLastError();
    sms = 132;
  }
  const std::int64_t blocks = g.tiles() * g.batch, columns = g.tiles() * (kl ? g.batch : 1);
  g.splits = std::max<std::int64_t>(1, std::min<std::int64_t>({(4 * sms + blocks - 1) / blocks, 16, columns}));
  return g;
}

// Workspace layout, each part aligned to 256 bytes.
struct Layout {
  std::size_t shat, that, dhat, inv_norm, clamped, t_inv_norm, t_clamped, lse, states, partial, panel_s, panel_t, shat16,
      that16, total;
};

// Loss partials of the Panels schedule: one per row of each image (pair).
std::int64_t panel_partials(const Geometry& g, bool kl) { return (kl ? g.batch : 1) * g.batch * g.np; }

std::size_t align256(std::size_t x) { return (x + 255) / 256 * 256; }

Layout layout(const Geometry& g, bool kl) {
  Layout l{};
  std::size_t at = 0;
  auto take = [&](std::size_t bytes) {
    const std::size_t here = at;
    at += align256(bytes);
    return here;
  };
  const std::size_t blocks = static_cast<std::size_t>(g.tiles() * g.batch * g.splits);
  l.shat = take(sizeof(float) * g.batch * g.np * g.csp);
  l.that = take(sizeof(float) * g.batch * g.np * g.ctp);
  l.dhat = take(sizeof(float) * g.splits * g.grad_stride());
  l.inv_norm = take(sizeof(float) * g.batch * g.nodes);
  l.clamped = take(g.batch * g.nodes);
  l.t_inv_norm = take(sizeof(float) * g.batch * g.nodes);
  l.t_clamped = take(g.batch * g.nodes);
  const bool tiled_kl = kl && !g.panels;
  l.lse = take(tiled_kl ? sizeof(float2) * g.batch * g.batch * g.np : 0);
  l.states = take(tiled_kl ? sizeof(gkd::detail::KlRow<float>) * g.splits * g.batch * g.batch * g.np : 0);
  l.partial = take(sizeof(double) * (g.panels ? std::size_t(panel_partials(g, kl))
                                              : std::max<std::size_t>(blocks, kMergeBlocks)));
  l.panel_s = take(g.panels ? sizeof(float) * g.panel_rows * g.panel_ld : 0);
  l.panel_t = take(g.panels ? sizeof(float) * g.panel_rows * g.panel_ld : 0);
  l.shat16 = take(g.bf16 ? sizeof(__nv_bfloat16) * g.batch * g.np * g.csp : 0);
  l.that16 = take(g.bf16 ? sizeof(__nv_bfloat16) * g.batch * g.np * g.ctp : 0);
  l.total = at;
  return l;
}

void check_shape(const char* op, const PairwiseShape& s, const PairwiseArgs& args) {
  GKD_CHECK(s.batch > 0 && s.nodes > 0 && s.cs > 0 && s.ct > 0, op,
            "needs B, N, C_s, C_t > 0, got B " << s.batch << " N " << s.nodes << " C_s " << s.cs << " C_t " << s.ct);
  GKD_CHECK(args.panel_rows >= 0, op, "panel_rows must be non-negative (0: the default), got " << args.panel_rows);
  GKD_CHECK(args.schedule != Schedule::SmallGraphs, op,
            "the SmallGraphs schedule is graph_kd's; pair-wise losses run on Auto, Tiles or Panels");
}

// ---- device helpers ------------------------------------------------------------------------------

// Normalises row r (one warp) of x [B·N, c] into the padded hat [B, Np, cp] (and, when hat16 is given, its
// bfloat16 rounding at the same positions).
__global__ void normalize_rows_kernel(const float* __restrict__ x, std::int64_t rows, std::int64_t nodes,
                                      std::int64_t np, int c, int cp, float eps, float* __restrict__ hat,
                                      float* __restrict__ inv_norm, unsigned char* __restrict__ clamped,
                                      __nv_bfloat16* __restrict__ hat16) {
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / 32);
  const int lane = threadIdx.x % 32;
  for (std::int64_t r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    const float* xr = x + r * c;
    float sq = 0;
    for (int k = lane; k < c; k += 32) sq += xr[k] * xr[k];
    for (int o = 16; o > 0; o >>= 1) sq += __shfl_xor_sync(0xffffffffu, sq, o);
    const float inv = gkd::detail::inv_row_norm(sq, eps);
    const std::int64_t at = ((r / nodes) * np + r % nodes) * cp;
    for (int k = lane; k < cp; k += 32) {
      const float v = k < c ? xr[k] * inv : 0.f;
      hat[at + k] = v;
      if (hat16) hat16[at + k] = __float2bfloat16_rn(v);
    }
    if (lane == 0) {
      inv_norm[r] = inv;
      clamped[r] = !(sqrtf(sq) > eps);
    }
  }
}

// d x = normalize_backward(d x̂) for every real row (one warp per row), unpadding.
__global__ void normalize_backward_kernel(const float* __restrict__ hat, const float* __restrict__ dhat,
                                          const float* __restrict__ inv_norm, const unsigned char* __restrict__ clamped,
                                          std::int64_t rows, std::int64_t nodes, std::int64_t np, int c, int cp,
                                          std::int64_t splits, std::int64_t split_stride, float* __restrict__ grad) {
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / 32);
  const int lane = threadIdx.x % 32;
  for (std::int64_t r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    const std::int64_t off = ((r / nodes) * np + r % nodes) * cp;
    auto dxhat = [&](int k) {
      float v = 0;
      for (std::int64_t z = 0; z < splits; ++z) v += dhat[z * split_stride + off + k];
      return v;
    };
    float dot = 0;
    for (int k = lane; k < c; k += 32) dot += hat[off + k] * dxhat(k);
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    for (int k = lane; k < c; k += 32)
      grad[r * c + k] = gkd::detail::normalize_backward(dxhat(k), hat[off + k], dot, inv_norm[r], clamped[r] != 0);
  }
}

__global__ void scale_kernel(const float* __restrict__ factor, float* __restrict__ x, std::int64_t n) {
  const float f = *factor;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] *= f;
}

// Sums `count` partials in a fixed order (one block) and writes the float loss.
__global__ void finalize_loss_kernel(const double* __restrict__ partial, std::int64_t count, float* __restrict__ loss) {
  using Reduce = cub::BlockReduce<double, 256>;
  __shared__ typename Reduce::TempStorage temp;
  double s = 0;
  for (std::int64_t i = threadIdx.x; i < count; i += 256) s += partial[i];
  const double total = Reduce(temp).Sum(s);
  if (threadIdx.x == 0) *loss = static_cast<float>(total);
}

// Stages rows [64] × channels [k0, k0 + 16) of a padded feature block (leading dim ld) into smem.
__device__ __forceinline__ void stage_chunk(float (*dst)[kPadK], const float* __restrict__ src, std::int64_t ld, int k0) {
  for (int v = threadIdx.x; v < kTile * kChunk / 4; v += kThreads) {
    const int r = v / (kChunk / 4), c4 = (v % (kChunk / 4)) * 4;
    const float4 x = *reinterpret_cast<const float4*>(src + r * ld + k0 + c4);
    dst[r][c4] = x.x;
    dst[r][c4 + 1] = x.y;
    dst[r][c4 + 2] = x.z;
    dst[r][c4 + 3] = x.w;
  }
}

template <class Frag>
__device__ __forceinline__ void to_tf32(Frag& f) {
  for (int i = 0; i < f.num_elements; ++i) f.x[i] = wmma::__float_to_tf32(f.x[i]);
}

// Splits f into hi + lo TF32 parts (3xTF32).
template <class Frag>
__device__ __forceinline__ void split_tf32(Frag& hi, Frag& lo) {
  for (int i = 0; i < hi.num_elements; ++i) {
    const float v = hi.x[i];
    hi.x[i] = wmma::__float_to_tf32(v);
    lo.x[i] = wmma::__float_to_tf32(v - hi.x[i]);
  }
}

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using FragBc = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major>;
using FragBr = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;

// S[64][64] = X Yᵀ for 64 padded rows of X and of Y (leading dim ld, kp channels). Each warp owns 16 rows.
template <bool kPrecise>
__device__ void similarity_tile(const float* __restrict__ x, const float* __restrict__ y, std::int64_t ld, std::int64_t kp,
                                float (*xs)[kPadK], float (*ys)[kPadK], float (*s)[kPadT]) {
  const int warp = threadIdx.x / 32;
  FragC acc[4];
  for (auto& a : acc) wmma::fill_fragment(a, 0.f);
  for (int k0 = 0; k0 < kp; k0 += kChunk) {
    __syncthreads();
    stage_chunk(xs, x, ld, k0);
    stage_chunk(ys, y, ld, k0);
    __syncthreads();
    for (int kk = 0; kk < kChunk; kk += 8) {
      FragA a, a_lo;
      wmma::load_matrix_sync(a, &xs[warp * 16][kk], kPadK);
      if constexpr (kPrecise) split_tf32(a, a_lo);
      else to_tf32(a);
      for (int f = 0; f < 4; ++f) {
        FragBc b, b_lo;
        wmma::load_matrix_sync(b, &ys[f * 16][kk], kPadK);
        if constexpr (kPrecise) {
          split_tf32(b, b_lo);
          wmma::mma_sync(acc[f], a_lo, b, acc[f]);
          wmma::mma_sync(acc[f], a, b_lo, acc[f]);
        } else {
          to_tf32(b);
        }
        wmma::mma_sync(acc[f], a, b, acc[f]);
      }
    }
  }
  for (int f = 0; f < 4; ++f) wmma::store_matrix_sync(&s[warp * 16][f * 16], acc[f], kPadT, wmma::mem_row_major);
  __syncthreads();
}

// dX[64 rows][cp] += G[64][64] · Y[64 rows of the columns][cp] (global dX owned by this block).
template <bool kPrecise>
__device__ void accumulate_gradient(float (*g)[kPadT], const float* __restrict__ y, float* __restrict__ dx,
                                    std::int64_t ld, std::int64_t cp) {
  const int warp = threadIdx.x / 32;
  FragA a[kTile / 8], a_lo[kTile / 8];
  for (int kk = 0; kk < kTile / 8; ++kk) {
    wmma::load_matrix_sync(a[kk], &g[warp * 16][kk * 8], kPadT);
    if constexpr (kPrecise) split_tf32(a[kk], a_lo[kk]);
    else to_tf32(a[kk]);
  }
  float* dxw = dx + static_cast<std::int64_t>(warp) * 16 * ld;
  for (std::int64_t n0 = 0; n0 < cp; n0 += 16) {
    FragC acc;
    wmma::load_matrix_sync(acc, dxw + n0, static_cast<unsigned>(ld), wmma::mem_row_major);
    for (int kk = 0; kk < kTile / 8; ++kk) {
      FragBr b, b_lo;
      wmma::load_matrix_sync(b, y + kk * 8 * ld + n0, static_cast<unsigned>(ld));
      if constexpr (kPrecise) {
        split_tf32(b, b_lo);
        wmma::mma_sync(acc, a_lo[kk], b, acc);
        wmma::mma_sync(acc, a[kk], b_lo, acc);
      } else {
        to_tf32(b);
      }
      wmma::mma_sync(acc, a[kk], b, acc);
    }
    wmma::store_matrix_sync(dxw + n0, acc, static_cast<unsigned>(ld), wmma::mem_row_major);
  }
  __syncthreads();
}

// Block sum of a per-thread double into partial[slot] (fixed order: deterministic).
__device__ void block_partial(double v, double* partial, std::int64_t slot) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const double total = Reduce(temp).Sum(v);
  if (threadIdx.x == 0) partial[slot] = total;
}

// ---- SKD -------------------------------------------------------------------------------------------

template <bool kPrecise>
__global__ void __launch_bounds__(kThreads) skd_kernel(Geometry geo, const float* __restrict__ shat,
                                                       const float* __restrict__ that, float weight,
                                                       float* __restrict__ dhat, double* __restrict__ partial) {
  __shared__ __align__(128) float xs[kTile][kPadK];
  __shared__ __align__(128) float ys[kTile][kPadK];
  __shared__ __align__(128) float ss[kTile][kPadT];
  __shared__ __align__(128) float st[kTile][kPadT];
  const std::int64_t b = blockIdx.y, i0 = static_cast<std::int64_t>(blockIdx.x) * kTile, z = blockIdx.z;
  const float* sb = shat + b * geo.np * geo.csp;
  const float* tb = that + b * geo.np * geo.ctp;
  const std::int64_t per = (geo.tiles() + geo.splits - 1) / geo.splits, f1 = std::min(geo.tiles(), (z + 1) * per);
  if (dhat != nullptr) dhat += z * geo.grad_stride();
  double loss = 0;
  for (std::int64_t f = z * per; f < f1; ++f) {
    const std::int64_t j0 = f * kTile;
    similarity_tile<kPrecise>(sb + i0 * geo.csp, sb + j0 * geo.csp, geo.csp, geo.csp, xs, ys, ss);
    similarity_tile<kPrecise>(tb + i0 * geo.ctp, tb + j0 * geo.ctp, geo.ctp, geo.ctp, xs, ys, st);
    float local = 0;
    for (int e = threadIdx.x; e < kTile * kTile; e += kThreads) {
      const int r = e / kTile, c = e % kTile;
      const bool valid = i0 + r < geo.nodes && j0 + c < geo.nodes;
      float l = 0;
      const float coef = valid ? gkd::detail::skd_pair(ss[r][c], st[r][c], weight, l) : 0.f;
      local += l;
      ss[r][c] = coef;
    }
    loss += local;
    __syncthreads();
    if (dhat != nullptr)
      accumulate_gradient<kPrecise>(ss, sb + j0 * geo.csp, dhat + (b * geo.np + i0) * geo.csp, geo.csp, geo.csp);
  }
  block_partial(loss, partial, (z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x);
}

// ---- CIRKD -----------------------------------------------------------------------------------------

// Row statistics: block (a = blockIdx.y, row tile, split z) walks its share of the (b, column tile)
// pairs and stores the partial row state of each (a, b, row) in states[z]; merge_states_kernel merges
// the splits into the row log-sum-exps and the KL.
template <bool kPrecise>
__global__ void __launch_bounds__(kThreads) kl_stats_kernel(Geometry geo, const float* __restrict__ shat,
                                                            const float* __restrict__ that, float inv_tau,
                                                            gkd::detail::KlRow<float>* __restrict__ states) {
  __shared__ __align__(128) float xs[kTile][kPadK];
  __shared__ __align__(128) float ys[kTile][kPadK];
  __shared__ __align__(128) float ss[kTile][kPadT];
  __shared__ __align__(128) float st[kTile][kPadT];
  const std::int64_t a = blockIdx.y, i0 = static_cast<std::int64_t>(blockIdx.x) * kTile, z = blockIdx.z;
  const int r = threadIdx.x / 2, half = threadIdx.x % 2;  // two threads per row, 32 columns each
  const std::int64_t total = geo.batch * geo.tiles(), per = (total + geo.splits - 1) / geo.splits;
  const std::int64_t f1 = std::min(total, (z + 1) * per);
  gkd::detail::KlRow<float> row;
  for (std::int64_t f = z * per; f < f1; ++f) {
    const std::int64_t b = f / geo.tiles(), j0 = (f % geo.tiles()) * kTile;
    similarity_tile<kPrecise>(shat + (a * geo.np + i0) * geo.csp, shat + (b * geo.np + j0) * geo.csp, geo.csp, geo.csp,
                              xs, ys, ss);
    similarity_tile<kPrecise>(that + (a * geo.np + i0) * geo.ctp, that + (b * geo.np + j0) * geo.ctp, geo.ctp, geo.ctp,
                              xs, ys, st);
    for (int c = half * 32; c < half * 32 + 32; ++c)
      if (j0 + c < geo.nodes) row.add(st[r][c] * inv_tau, ss[r][c] * inv_tau);
    if (f + 1 == f1 || (f + 1) / geo.tiles() != b) {  // last column tile of image b in this split
      gkd::detail::KlRow<float> other;
      other.s.max = __shfl_xor_sync(0xffffffffu, row.s.max, 1);
      other.s.sum = __shfl_xor_sync(0xffffffffu, row.s.sum, 1);
      other.t.max = __shfl_xor_sync(0xffffffffu, row.t.max, 1);
      other.t.sum = __shfl_xor_sync(0xffffffffu, row.t.sum, 1);
      other.weighted = __shfl_xor_sync(0xffffffffu, row.weighted, 1);
      row.merge(other);
      if (half == 0) states[((z * geo.batch + a) * geo.batch + b) * geo.np + i0 + r] = row;
      row = gkd::detail::KlRow<float>{};
    }
  }
}

// Merges the split row states of every (a, b, row): lse and w · KL (block partials).
__global__ void __launch_bounds__(256) merge_states_kernel(Geometry geo, const gkd::detail::KlRow<float>* __restrict__ states,
                                                           double weight, float2* __restrict__ lse, double* __restrict__ partial) {
  const std::int64_t rows = geo.batch * geo.batch * geo.np;
  double loss = 0;
  for (std::int64_t q = blockIdx.x * 256 + threadIdx.x; q < rows; q += static_cast<std::int64_t>(gridDim.x) * 256) {
    if (q % geo.np >= geo.nodes) continue;
    gkd::detail::KlRow<float> m;
    for (std::int64_t z = 0; z < geo.splits; ++z) {
      // slots that no split wrote are zero bytes (the workspace is cleared), which is not an empty
      // KlRow (its max would be 0): skip every empty state
      const gkd::detail::KlRow<float>& o = states[z * rows + q];
      if (!o.empty()) m.merge(o);
    }
    lse[q] = make_float2(m.s.value(), m.t.value());
    loss += weight * static_cast<double>(m.loss());
  }
  using Reduce = cub::BlockReduce<double, 256>;
  __shared__ typename Reduce::TempStorage temp;
  const double total = Reduce(temp).Sum(loss);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Gradients: block (x = blockIdx.y, tile x0) adds Σ_y Σ_tiles G · ŝ_y to d ŝ_x. kColumns = false: the
// block's nodes are the rows i of the pairs (a = x); true: they are the columns j (b = x).
template <bool kPrecise, bool kColumns>
__global__ void __launch_bounds__(kThreads) kl_grad_kernel(Geometry geo, const float* __restrict__ shat,
                                                           const float* __restrict__ that, float inv_tau, float g_scale,
                                                           const float2* __restrict__ lse, float* __restrict__ dhat) {
  __shared__ __align__(128) float xs[kTile][kPadK];
  __shared__ __align__(128) float ys[kTile][kPadK];
  __shared__ __align__(128) float ss[kTile][kPadT];
  __shared__ __align__(128) float st[kTile][kPadT];
  const std::int64_t x = blockIdx.y, x0 = static_cast<std::int64_t>(blockIdx.x) * kTile, z = blockIdx.z;
  const std::int64_t total = geo.batch * geo.tiles(), per = (total + geo.splits - 1) / geo.splits;
  const std::int64_t f1 = std::min(total, (z + 1) * per);
  dhat += z * geo.grad_stride();
  for (std::int64_t f = z * per; f < f1; ++f) {
    const std::int64_t y = f / geo.tiles(), y0 = (f % geo.tiles()) * kTile;
    {
      similarity_tile<kPrecise>(shat + (x * geo.np + x0) * geo.csp, shat + (y * geo.np + y0) * geo.csp, geo.csp, geo.csp,
                                xs, ys, ss);
      similarity_tile<kPrecise>(that + (x * geo.np + x0) * geo.ctp, that + (y * geo.np + y0) * geo.ctp, geo.ctp, geo.ctp,
                                xs, ys, st);
      for (int e = threadIdx.x; e < kTile * kTile; e += kThreads) {
        const int r = e / kTile, c = e % kTile;
        float g = 0;
        if (x0 + r < geo.nodes && y0 + c < geo.nodes) {
          const std::int64_t pa = kColumns ? y : x, pb = kColumns ? x : y, i = kColumns ? y0 + c : x0 + r;
          const float2 l = lse[(pa * geo.batch + pb) * geo.np + i];
          g = g_scale * gkd::detail::kl_grad_coef(st[r][c] * inv_tau, ss[r][c] * inv_tau, l.y, l.x);
        }
        ss[r][c] = g;
      }
      __syncthreads();
      accumulate_gradient<kPrecise>(ss, shat + (y * geo.np + y0) * geo.csp, dhat + (x * geo.np + x0) * geo.csp, geo.csp,
                                    geo.csp);
    }
  }
}

// ---- Panels: per-row kernels -------------------------------------------------------------------------

// SKD, one block per panel row: partial[slot0 + r] = Σ_j w (a_s − a_t)², and the student row becomes the
// gradient coefficients 4 w (a_s − a_t) (columns < N).
__global__ void __launch_bounds__(kRowThreads) skd_panel_rows(Geometry geo, float weight, float* __restrict__ s,
                                                              const float* __restrict__ t, double* __restrict__ partial,
                                                              std::int64_t slot0) {
  float* sr = s + blockIdx.x * geo.panel_ld;
  const float* tr = t + blockIdx.x * geo.panel_ld;
  float loss = 0;
  for (std::int64_t c = threadIdx.x; c < geo.nodes; c += kRowThreads) sr[c] = gkd::detail::skd_pair(sr[c], tr[c], weight, loss);
  __shared__ typename cub::BlockReduce<double, kRowThreads>::TempStorage temp;
  const double total = cub::BlockReduce<double, kRowThreads>(temp).Sum(double(loss));
  if (threadIdx.x == 0) partial[slot0 + blockIdx.x] = total;
}

// CIRKD, one block per panel row (a row of image a against all pixels of image b): the row's online
// log-sum-exps, partial[slot0 + r] = w · KL, and (gradient wanted) the student row becomes
// g_scale · (q − p).
__global__ void __launch_bounds__(kRowThreads) cirkd_panel_rows(Geometry geo, float inv_tau, double weight,
                                                                float g_scale, float* __restrict__ s,
                                                                const float* __restrict__ t,
                                                                double* __restrict__ partial, std::int64_t slot0,
                                                                bool gradient) {
  float* sr = s + blockIdx.x * geo.panel_ld;
  const float* tr = t + blockIdx.x * geo.panel_ld;
  gkd::detail::KlRow<float> row;
  for (std::int64_t c = threadIdx.x; c < geo.nodes; c += kRowThreads) row.add(tr[c] * inv_tau, sr[c] * inv_tau);
  __shared__ typename cub::BlockReduce<gkd::detail::KlRow<float>, kRowThreads>::TempStorage temp;
  __shared__ float lse_t, lse_s;
  row = cub::BlockReduce<gkd::detail::KlRow<float>, kRowThreads>(temp).Reduce(row, gkd::detail::MergeStates{});
  if (threadIdx.x == 0) {
    partial[slot0 + blockIdx.x] = weight * static_cast<double>(row.loss());
    lse_t = row.t.value();
    lse_s = row.s.value();
  }
  if (!gradient) return;
  __syncthreads();
  for (std::int64_t c = threadIdx.x; c < geo.nodes; c += kRowThreads)
    sr[c] = g_scale * gkd::detail::kl_grad_coef(tr[c] * inv_tau, sr[c] * inv_tau, lse_t, lse_s);
}

// ---- host side ---------------------------------------------------------------------------------------

struct Prepared {
  Geometry geo;
  Layout lay;
  char* ws;
  cudaStream_t stream;
  float* shat() const { return reinterpret_cast<float*>(ws + lay.shat); }
  float* that() const { return reinterpret_cast<float*>(ws + lay.that); }
  float* dhat() const { return reinterpret_cast<float*>(ws + lay.dhat); }
  float* inv_norm() const { return reinterpret_cast<float*>(ws + lay.inv_norm); }
  unsigned char* clamped() const { return reinterpret_cast<unsigned char*>(ws + lay.clamped); }
  float2* lse() const { return reinterpret_cast<float2*>(ws + lay.lse); }
  double* partial() const { return reinterpret_cast<double*>(ws + lay.partial); }
  gkd::detail::KlRow<float>* states() const { return reinterpret_cast<gkd::detail::KlRow<float>*>(ws + lay.states); }
  float* panel_s() const { return reinterpret_cast<float*>(ws + lay.panel_s); }
  float* panel_t() const { return reinterpret_cast<float*>(ws + lay.panel_t); }
  __nv_bfloat16* shat16() const { return geo.bf16 ? reinterpret_cast<__nv_bfloat16*>(ws + lay.shat16) : nullptr; }
  __nv_bfloat16* that16() const { return geo.bf16 ? reinterpret_cast<__nv_bfloat16*>(ws + lay.that16) : nullptr; }
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  dim3 grid() const {
    return dim3(static_cast<unsigned>(geo.tiles()), static_cast<unsigned>(geo.batch), static_cast<unsigned>(geo.splits));
  }
};

Prepared prepare(const char* op, const float* student, const float* teacher, const PairwiseShape& shape,
                 const PairwiseArgs& args, float* loss, bool kl, void* workspace, std::size_t bytes, void* stream) {
  check_shape(op, shape, args);
  GKD_CHECK(student != nullptr && teacher != nullptr && loss != nullptr && workspace != nullptr, op,
            "student, teacher, loss and workspace must be device pointers, got a null one");
  GKD_CHECK(args.eps >= 0 && std::isfinite(args.eps), op, "eps must be finite and >= 0, got " << args.eps);
  GKD_CHECK(shape.nodes < (std::int64_t(1) << 31) / kTile * kTile && shape.batch < 65536, op,
            "N " << shape.nodes << " or B " << shape.batch << " exceeds the grid limits");
  GKD_CHECK(!args.bf16 || (!args.precise && args.schedule != Schedule::Tiles), op,
            "bf16 similarities run on the Panels schedule only, and exclude precise (got precise "
                << args.precise << ", schedule " << (args.schedule == Schedule::Tiles ? "Tiles" : "Panels/Auto") << ")");
  Prepared p{geometry(shape, kl, args), {}, static_cast<char*>(workspace),
             static_cast<cudaStream_t>(stream)};
  p.lay = layout(p.geo, kl);
  p.compute = args.precise ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
  GKD_CHECK(bytes >= p.lay.total, op, "workspace of " << bytes << " bytes is smaller than the " << p.lay.total << " needed");
  GKD_CHECK(reinterpret_cast<std::uintptr_t>(workspace) % 256 == 0, op, "workspace must be 256-byte aligned");
  // zero padding of the features and the gradient accumulators
  GKD_PKD_CUDA_CHECK(cudaMemsetAsync(workspace, 0, p.lay.inv_norm, p.stream));
  if (kl) GKD_PKD_CUDA_CHECK(cudaMemsetAsync(p.states(), 0, p.lay.partial - p.lay.states, p.stream));
  if (p.geo.panels) GKD_PKD_CUDA_CHECK(cudaMemsetAsync(p.partial(), 0, p.lay.panel_s - p.lay.partial, p.stream));
  const Geometry& g = p.geo;
  const std::int64_t rows = g.batch * g.nodes;
  const unsigned blocks = static_cast<unsigned>(std::min<std::int64_t>((rows + 7) / 8, 65535));
  normalize_rows_kernel<<<blocks, 256, 0, p.stream>>>(student, rows, g.nodes, g.np, static_cast<int>(g.cs),
                                                      static_cast<int>(g.csp), static_cast<float>(args.eps), p.shat(),
                                                      p.inv_norm(), p.clamped(), p.shat16());
  GKD_PKD_CHECK_LAUNCH("normalize_rows_kernel");
  normalize_rows_kernel<<<blocks, 256, 0, p.stream>>>(teacher, rows, g.nodes, g.np, static_cast<int>(g.ct),
                                                      static_cast<int>(g.ctp), static_cast<float>(args.eps), p.that(),
                                                      reinterpret_cast<float*>(p.ws + p.lay.t_inv_norm),
                                                      reinterpret_cast<unsigned char*>(p.ws + p.lay.t_clamped), p.that16());
  GKD_PKD_CHECK_LAUNCH("normalize_rows_kernel");
  return p;
}

void finish(const char* op, const Prepared& p, float* loss, float* grad_student, std::int64_t partials) {
  finalize_loss_kernel<<<1, 256, 0, p.stream>>>(p.partial(), partials, loss);
  GKD_PKD_CHECK_LAUNCH("finalize_loss_kernel");
  if (grad_student != nullptr) {
    const Geometry& g = p.geo;
    const std::int64_t rows = g.batch * g.nodes;
    const unsigned blocks = static_cast<unsigned>(std::min<std::int64_t>((rows + 7) / 8, 65535));
    normalize_backward_kernel<<<blocks, 256, 0, p.stream>>>(p.shat(), p.dhat(), p.inv_norm(), p.clamped(), rows, g.nodes,
                                                            g.np, static_cast<int>(g.cs), static_cast<int>(g.csp),
                                                            g.splits, g.grad_stride(), grad_student);
    GKD_PKD_CHECK_LAUNCH("normalize_backward_kernel");
  }
  (void)op;
}

// Panels: similarity panels of rows [p0, p0 + rows) of image x against every node of image y, student
// into panel_s and teacher into panel_t.
void panel_similarities(const Prepared& p, std::int64_t x, std::int64_t p0, std::int64_t rows, std::int64_t y) {
  const Geometry& g = p.geo;
  const cudaDataType_t type = g.bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const cublasComputeType_t compute = g.bf16 ? CUBLAS_COMPUTE_32F : p.compute;
  // element (image, row, 0) of the student (s) or teacher (t) rows, float32 or bf16
  auto at = [&](bool student, std::int64_t image, std::int64_t row) -> const void* {
    const std::int64_t offset = (image * g.np + row) * (student ? g.csp : g.ctp);
    if (g.bf16) return (student ? p.shat16() : p.that16()) + offset;
    return (student ? p.shat() : p.that()) + offset;
  };
  blas::gemm_row_major(p.stream, compute, type, false, true, rows, g.nodes, g.cs, 1.0f, at(true, x, p0), g.csp,
                       at(true, y, 0), g.csp, 0.0f, p.panel_s(), g.panel_ld);
  blas::gemm_row_major(p.stream, compute, type, false, true, rows, g.nodes, g.ct, 1.0f, at(false, x, p0), g.ctp,
                       at(false, y, 0), g.ctp, 0.0f, p.panel_t(), g.panel_ld);
}

// dŝ_x[p0, p0 + rows) += G · Ŝ_y (the coefficient panel in panel_s).
void panel_row_gradient(const Prepared& p, std::int64_t x, std::int64_t p0, std::int64_t rows, std::int64_t y) {
  const Geometry& g = p.geo;
  blas::gemm_row_major(p.stream, p.compute, CUDA_R_32F, false, false, rows, g.cs, g.nodes, 1.0f, p.panel_s(), g.panel_ld,
                       p.shat() + y * g.np * g.csp, g.csp, 1.0f, p.dhat() + (x * g.np + p0) * g.csp, g.csp);
}

void skd_panels(const Prepared& p, float weight, bool gradient) {
  const Geometry& g = p.geo;
  for (std::int64_t b = 0; b < g.batch; ++b)
    for (std::int64_t p0 = 0; p0 < g.nodes; p0 += g.panel_rows) {
      const std::int64_t rows = std::min(g.panel_rows, g.nodes - p0);
      panel_similarities(p, b, p0, rows, b);
      skd_panel_rows<<<static_cast<unsigned>(rows), kRowThreads, 0, p.stream>>>(g, weight, p.panel_s(), p.panel_t(),
                                                                                 p.partial(), b * g.np + p0);
      GKD_PKD_CHECK_LAUNCH("skd_panel_rows");
      if (gradient) panel_row_gradient(p, b, p0, rows, b);  // G is symmetric: the rows' sum covers both roles
    }
}

void cirkd_panels(const Prepared& p, float inv_tau, double weight, float g_scale, bool gradient) {
  const Geometry& g = p.geo;
  for (std::int64_t a = 0; a < g.batch; ++a)
    for (std::int64_t p0 = 0; p0 < g.nodes; p0 += g.panel_rows)
      for (std::int64_t b = 0; b < g.batch; ++b) {
        const std::int64_t rows = std::min(g.panel_rows, g.nodes - p0);
        panel_similarities(p, a, p0, rows, b);
        cirkd_panel_rows<<<static_cast<unsigned>(rows), kRowThreads, 0, p.stream>>>(
            g, inv_tau, weight, g_scale, p.panel_s(), p.panel_t(), p.partial(), (a * g.batch + b) * g.np + p0, gradient);
        GKD_PKD_CHECK_LAUNCH("cirkd_panel_rows");
        if (!gradient) continue;
        panel_row_gradient(p, a, p0, rows, b);
        // dŝ_b += Gᵀ · Ŝ_a[p0, p0 + rows): the pixels of image b as columns of the pairs
        blas::gemm_row_major(p.stream, p.compute, CUDA_R_32F, true, false, g.nodes, g.cs, rows, 1.0f, p.panel_s(), g.panel_ld,
                             p.shat() + (a * g.np + p0) * g.csp, g.csp, 1.0f, p.dhat() + b * g.np * g.csp, g.csp);
      }
}

}  // namespace

std::size_t similarity_mse_workspace(const PairwiseShape& shape, const PairwiseArgs& args) {
  check_shape("similarity_mse", shape, args);
  return layout(geometry(shape, false, args), false).total;
}

std::size_t pixel_pair_kl_workspace(const PairwiseShape& shape, const PairwiseArgs& args) {
  check_shape("pixel_pair_kl", shape, args);
  return layout(geometry(shape, true, args), true).total;
}

void similarity_mse_forward(const float* student, const float* teacher, const PairwiseShape& shape,
                            const PairwiseArgs& args, float* loss, float* grad_student, void* workspace,
                            std::size_t workspace_bytes, void* stream) {
  const Prepared p = prepare("similarity_mse", student, teacher, shape, args, loss, false, workspace, workspace_bytes, stream);
  const Geometry& g = p.geo;
  const float w = args.mean ? static_cast<float>(1.0 / (double(g.batch) * double(g.nodes) * double(g.nodes))) : 1.f;
  if (g.panels) {
    skd_panels(p, w, grad_student != nullptr);
    finish("similarity_mse", p, loss, grad_student, panel_partials(g, false));
    return;
  }
  float* dhat = grad_student != nullptr ? p.dhat() : nullptr;
  if (args.precise) skd_kernel<true><<<p.grid(), kThreads, 0, p.stream>>>(g, p.shat(), p.that(), w, dhat, p.partial());
  else skd_kernel<false><<<p.grid(), kThreads, 0, p.stream>>>(g, p.shat(), p.that(), w, dhat, p.partial());
  GKD_PKD_CHECK_LAUNCH("skd_kernel");
  finish("similarity_mse", p, loss, grad_student, g.batch * g.tiles() * g.splits);
}

void pixel_pair_kl_forward(const float* student, const float* teacher, const PairwiseShape& shape,
                           const PairwiseArgs& args, float* loss, float* grad_student, void* workspace,
                           std::size_t workspace_bytes, void* stream) {
  GKD_CHECK(args.temperature > 0 && std::isfinite(args.temperature), "pixel_pair_kl",
            "temperature must be positive and finite, got " << args.temperature);
  const Prepared p = prepare("pixel_pair_kl", student, teacher, shape, args, loss, true, workspace, workspace_bytes, stream);
  const Geometry& g = p.geo;
  const double w = args.mean ? 1.0 / (double(g.batch) * double(g.batch) * double(g.nodes)) : 1.0;
  const float inv_tau = static_cast<float>(1.0 / args.temperature), g_scale = static_cast<float>(w / args.temperature);
  if (g.panels) {
    cirkd_panels(p, inv_tau, w, g_scale, grad_student != nullptr);
    finish("pixel_pair_kl", p, loss, grad_student, panel_partials(g, true));
    return;
  }
  if (args.precise) kl_stats_kernel<true><<<p.grid(), kThreads, 0, p.stream>>>(g, p.shat(), p.that(), inv_tau, p.states());
  else kl_stats_kernel<false><<<p.grid(), kThreads, 0, p.stream>>>(g, p.shat(), p.that(), inv_tau, p.states());
  GKD_PKD_CHECK_LAUNCH("kl_stats_kernel");
  merge_states_kernel<<<kMergeBlocks, 256, 0, p.stream>>>(g, p.states(), w, p.lse(), p.partial());
  GKD_PKD_CHECK_LAUNCH("merge_states_kernel");
  if (grad_student != nullptr) {
    if (args.precise) {
      kl_grad_kernel<true, false><<<p.grid(), kThreads, 0, p.stream>>>(g, p.shat(), p.that(), inv_tau, g_scale, p.lse(), p.dhat());
      GKD_PKD_CHECK_LAUNCH("kl_grad_kernel<rows>");
      kl_grad_kernel<true, true><<<p.grid(), kThreads, 0, p.stream>>>(g, p.shat(), p.that(), inv_tau, g_scale, p.lse(), p.dhat());
      GKD_PKD_CHECK_LAUNCH("kl_grad_kernel<columns>");
    } else {
      kl_grad_kernel<false, false><<<p.grid(), kThreads, 0, p.stream>>>(g, p.shat(), p.that(), inv_tau, g_scale, p.lse(), p.dhat());
      GKD_PKD_CHECK_LAUNCH("kl_grad_kernel<rows>");
      kl_grad_kernel<false, true><<<p.grid(), kThreads, 0, p.stream>>>(g, p.shat(), p.that(), inv_tau, g_scale, p.lse(), p.dhat());
      GKD_PKD_CHECK_LAUNCH("kl_grad_kernel<columns>");
    }
  }
  finish("pixel_pair_kl", p, loss, grad_student, kMergeBlocks);
}

void pairwise_kd_backward(const float* grad_output, float* grad, std::int64_t n, void* stream) {
  GKD_CHECK(n >= 0, "pairwise_kd_backward", "n must be >= 0, got " << n);
  if (n == 0) return;
  GKD_CHECK(grad_output != nullptr && grad != nullptr, "pairwise_kd_backward", "null device pointer");
  const unsigned blocks = static_cast<unsigned>(std::min<std::int64_t>((n + 255) / 256, 4096));
  scale_kernel<<<blocks, 256, 0, static_cast<cudaStream_t>(stream)>>>(grad_output, grad, n);
  GKD_PKD_CHECK_LAUNCH("scale_kernel");
}

}  // namespace gkd::cuda
