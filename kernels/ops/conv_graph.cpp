// SPDX-License-Identifier: Apache-2.0
// Convolutions through cuDNN's graph (backend) API: descriptors, heuristics, plan choice and execution.
#include "ops/conv_graph.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "gkd/cuda/memory.hpp"
#include "ops/dnn.hpp"

namespace gkd::cuda::dnn {
namespace {

/// An owned backend descriptor. `set` and `finalize` throw gkd::Error naming the failing call.
class Descriptor {
 public:
  explicit Descriptor(cudnnBackendDescriptorType_t type) { GKD_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d_)); }
  ~Descriptor() {
    if (d_) (void)cudnnBackendDestroyDescriptor(d_);
  }
  Descriptor(Descriptor&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  Descriptor& operator=(Descriptor&& o) noexcept {
    std::swap(d_, o.d_);
    return *this;
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  template <class V>
  Descriptor& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, std::int64_t count,
                  const V* values) {
    GKD_CUDNN_CHECK(cudnnBackendSetAttribute(d_, name, type, count, values));
    return *this;
  }
  Descriptor& set(cudnnBackendAttributeName_t name, const Descriptor& value) {
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value.d_);
  }
  void finalize() { GKD_CUDNN_CHECK(cudnnBackendFinalize(d_)); }
  [[nodiscard]] bool try_finalize() { return cudnnBackendFinalize(d_) == CUDNN_STATUS_SUCCESS; }
  [[nodiscard]] cudnnBackendDescriptor_t get() const { return d_; }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

/// Unique ids of the three tensors in every plan and variant pack.
constexpr std::int64_t kUidX = 'x', kUidW = 'w', kUidY = 'y';
constexpr std::int64_t kMaxWorkspace = std::int64_t{1} << 30;
constexpr int kTimedCandidates = 8;
constexpr int kTimedRuntimeCompiled = 2;  // each costs an NVRTC compilation, about a second

Descriptor tensor(std::int64_t uid, cudnnDataType_t type, const Shape& s, std::int64_t alignment) {
  const std::int64_t dims[4] = {s[0], s[1], s[2], s[3]};
  const std::int64_t strides[4] = {s[1] * s[2] * s[3], s[2] * s[3], s[3], 1};
  Descriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type)
      .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims)
      .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides)
      .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid)
      .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
  t.finalize();
  return t;
}

/// The operation graph of one convolution direction (a single node) with every descriptor it refers
/// to. Plans keep it alive: the backend API does not promise to copy what a descriptor refers to, and
/// cudnn-frontend keeps these alive too.
struct OperationGraph {
  Descriptor x, w, y, conv, op, graph{CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR};  // destroyed graph first
};

std::shared_ptr<const OperationGraph> operation_graph(const ConvProblem& p, std::int64_t alignment) {
  const std::int64_t spatial = 2;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  Descriptor conv(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  conv.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &p.compute)
      .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode)
      .set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial)
      .set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, p.dilation)
      .set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, p.stride)
      .set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, p.pad)
      .set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, p.pad);
  conv.finalize();

  const float alpha_f = 1, beta_f = 0;
  const double alpha_d = 1, beta_d = 0;
  const bool dbl = p.compute == CUDNN_DATA_DOUBLE;
  const cudnnBackendAttributeType_t scalar = dbl ? CUDNN_TYPE_DOUBLE : CUDNN_TYPE_FLOAT;
  const void* alpha = dbl ? static_cast<const void*>(&alpha_d) : &alpha_f;
  const void* beta = dbl ? static_cast<const void*>(&beta_d) : &beta_f;
  using Names = std::tuple<cudnnBackendDescriptorType_t, cudnnBackendAttributeName_t, cudnnBackendAttributeName_t,
                           cudnnBackendAttributeName_t, cudnnBackendAttributeName_t, cudnnBackendAttributeName_t,
                           cudnnBackendAttributeName_t>;  // type, x, w, y, conv, alpha, beta
  const Names names =
      p.direction == ConvDirection::Forward
          ? Names{CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                  CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,         CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                  CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                  CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA}
      : p.direction == ConvDirection::BackwardData
          ? Names{CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,        CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,        CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA}
          : Names{CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,      CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,   CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA};
  const auto [type, x_name, w_name, y_name, conv_name, alpha_name, beta_name] = names;
  auto g = std::make_shared<OperationGraph>(OperationGraph{.x = tensor(kUidX, p.type, p.xs, alignment),
                                                           .w = tensor(kUidW, p.type, p.ws, alignment),
                                                           .y = tensor(kUidY, p.type, p.ys, alignment),
                                                           .conv = std::move(conv),
                                                           .op = Descriptor(type)});
  g->op.set(x_name, g->x).set(w_name, g->w).set(y_name, g->y).set(conv_name, g->conv);
  g->op.set(alpha_name, scalar, 1, alpha).set(beta_name, scalar, 1, beta);
  g->op.finalize();

  cudnnHandle_t h = handle();
  const cudnnBackendDescriptor_t ops = g->op.get();
  g->graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h)
      .set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ops);
  g->graph.finalize();
  return g;
}

/// The engine configurations cuDNN's heuristics list for `graph` in `mode`, best first (none if the
/// heuristic cannot serve the graph).
std::vector<std::shared_ptr<Descriptor>> engine_configs(const Descriptor& graph, cudnnBackendHeurMode_t mode) {
  Descriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heur.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph).set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  if (!heur.try_finalize()) return {};
  std::int64_t count = 0;
  if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                               nullptr) != CUDNN_STATUS_SUCCESS)
    return {};
  std::vector<std::shared_ptr<Descriptor>> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (std::int64_t i = 0; i < count; ++i) {
    configs.push_back(std::make_shared<Descriptor>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    raw.push_back(configs.back()->get());
  }
  std::int64_t returned = 0;
  GKD_CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                           count, &returned, raw.data()));
  configs.erase(configs.begin() + std::clamp<std::int64_t>(returned, 0, count), configs.end());
  return configs;
}

/// What the engine of a configuration is and promises: its index in cuDNN's global engine list, its
/// numerical notes, and whether it compiles a kernel at run time (NVRTC: about a second per plan).
struct EngineFacts {
  std::int64_t index = -1;
  std::vector<cudnnBackendNumericalNote_t> notes;
  bool runtime_compiled = false;
};

EngineFacts engine_facts(const Descriptor& config) {
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  cudnnBackendDescriptor_t e = engine.get();
  std::int64_t n = 0;
  GKD_CUDNN_CHECK(
      cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &e));
  EngineFacts f;
  GKD_CUDNN_CHECK(cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &f.index));
  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  GKD_CUDNN_CHECK(cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                           CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n, notes));
  f.notes.assign(notes, notes + std::clamp<std::int64_t>(n, 0, CUDNN_NUMERICAL_NOTE_TYPE_COUNT));
  cudnnBackendBehaviorNote_t behaviour[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
  GKD_CUDNN_CHECK(cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                           CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &n, behaviour));
  const cudnnBackendBehaviorNote_t* begin = behaviour;
  const cudnnBackendBehaviorNote_t* end = begin + std::clamp<std::int64_t>(n, 0, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT);
  f.runtime_compiled = std::find(begin, end, CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) != end;
  return f;
}

/// An execution plan and the descriptors it was built from.
struct Plan {
  std::shared_ptr<const OperationGraph> graph;
  std::shared_ptr<const Descriptor> config;
  Descriptor plan{CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR};
  std::int64_t workspace = 0;
};

/// A finalised execution plan of `config`, or null when cuDNN cannot build it or it needs more than
/// the workspace cap.
std::unique_ptr<Plan> build_plan(std::shared_ptr<const OperationGraph> graph, std::shared_ptr<const Descriptor> config) {
  auto p = std::make_unique<Plan>(Plan{.graph = std::move(graph), .config = std::move(config)});
  cudnnHandle_t h = handle();
  p->plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h)
      .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, *p->config);
  if (!p->plan.try_finalize()) return nullptr;
  std::int64_t n = 0;
  GKD_CUDNN_CHECK(cudnnBackendGetAttribute(p->plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                                           1, &n, &p->workspace));
  return p->workspace <= kMaxWorkspace ? std::move(p) : nullptr;
}

void execute(const Plan& plan, void* x, void* w, void* y, void* workspace) {
  void* pointers[3] = {x, w, y};
  const std::int64_t uids[3] = {kUidX, kUidW, kUidY};
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers)
      .set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids)
      .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  pack.finalize();
  GKD_CUDNN_CHECK(cudnnBackendExecute(handle(), plan.plan.get(), pack.get()));
}

/// Milliseconds of one run of `plan` on the real buffers (after one untimed run).
float time_plan(const Plan& plan, void* x, void* w, void* y, void* workspace) {
  execute(plan, x, w, y, workspace);
  return elapsed_ms([&] { execute(plan, x, w, y, workspace); });
}

/// Whether the precision allows an engine with these notes (`relaxed`: a non-deterministic float64 one).
/// Inputs converted below the element type, or reduced-precision sums, never are; tensor cores (TF32
/// for float32) only unless strict; FFT and Winograd transforms not on 16-bit data, where they round the
/// transformed operands to 16 bits too (autocast promises the CPU's roundings: the 16-bit operands'
/// exact products summed in float32).
bool allowed(const ConvProblem& p, const std::vector<cudnnBackendNumericalNote_t>& notes, bool relaxed) {
  const bool half = p.type == CUDNN_DATA_HALF || p.type == CUDNN_DATA_BFLOAT16;
  for (auto n : notes) {
    if (n == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS || n == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION)
      return false;
    if (half && (n == CUDNN_NUMERICAL_NOTE_FFT || n == CUDNN_NUMERICAL_NOTE_WINOGRAD ||
                 n == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4 || n == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6 ||
                 n == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13))
      return false;
    if (p.strict && n == CUDNN_NUMERICAL_NOTE_TENSOR_CORE) return false;
    if (p.deterministic && !relaxed && n == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) return false;
  }
  return true;
}

/// The fastest allowed plan for `p`, timed on the given buffers; null when there is none. Candidates
/// come from heuristics mode A, then the fallback list (each engine once); engines that compile at run
/// time are tried only when no precompiled one builds, and then only the first two.
std::unique_ptr<Plan> choose_plan(const ConvProblem& p, std::int64_t alignment, void* x, void* w, void* y) {
  std::shared_ptr<const OperationGraph> graph;
  std::vector<std::pair<std::shared_ptr<Descriptor>, EngineFacts>> configs;
  try {
    graph = operation_graph(p, alignment);
    for (auto mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      std::vector<std::shared_ptr<Descriptor>> listed;
      try {
        listed = engine_configs(graph->graph, mode);
      } catch (const Error&) {  // this heuristic cannot serve the graph; the other may
      }
      for (auto& c : listed) {
        try {
          EngineFacts f = engine_facts(*c);
          const bool seen = std::any_of(configs.begin(), configs.end(),
                                        [&](const auto& known) { return known.second.index == f.index; });
          if (!seen) configs.emplace_back(std::move(c), std::move(f));
        } catch (const Error&) {  // an engine cuDNN cannot describe here
        }
      }
    }
  } catch (const Error&) {
    return nullptr;  // the graph API does not describe this problem: the legacy API will
  }
  for (bool relaxed : {false, true}) {
    if (relaxed && !p.deterministic) break;  // the first pass allowed everything already
    std::vector<std::unique_ptr<Plan>> candidates;
    for (bool compiled_at_run_time : {false, true}) {
      if (compiled_at_run_time && !candidates.empty()) break;
      const int most = compiled_at_run_time ? kTimedRuntimeCompiled : kTimedCandidates;
      for (const auto& [config, facts] : configs) {
        if (static_cast<int>(candidates.size()) == most) break;
        if (facts.runtime_compiled != compiled_at_run_time || !allowed(p, facts.notes, relaxed)) continue;
        try {
          if (auto plan = build_plan(graph, config)) candidates.push_back(std::move(plan));
        } catch (const Error&) {  // an engine cuDNN cannot build here
        }
      }
    }
    if (candidates.empty()) continue;
    std::int64_t most = 0;
    for (const auto& c : candidates) most = std::max(most, c->workspace);
    std::unique_ptr<Workspace> ws;
    try {
      ws = std::make_unique<Workspace>(static_cast<std::size_t>(most));
    } catch (const Error&) {  // out of memory: time those that need no workspace
      ws = std::make_unique<Workspace>(0);
    }
    std::unique_ptr<Plan> best;
    float best_ms = 0;
    for (auto& c : candidates) {
      if (static_cast<std::size_t>(c->workspace) > ws->bytes) continue;
      float ms = 0;
      try {
        ms = time_plan(*c, x, w, y, ws->ptr);
      } catch (const Error&) {  // an engine that fails to run this problem
        continue;
      }
      if (!best || ms < best_ms) {
        best = std::move(c);
        best_ms = ms;
      }
    }
    if (best) return best;
  }
  return nullptr;
}

}  // namespace

bool run_graph_convolution(const ConvProblem& p, void* x, void* w, void* y) {
  using Key = std::tuple<int, int, int, bool, bool, Shape, Shape, Shape, std::int64_t, std::int64_t, std::int64_t,
                         std::int64_t, std::int64_t, std::int64_t, std::int64_t>;
  const std::int64_t alignment = alignment_of(x, w, y);
  const Key key{static_cast<int>(p.direction), static_cast<int>(p.type), static_cast<int>(p.compute), p.strict,
                p.deterministic, p.xs, p.ws, p.ys,
                p.stride[0], p.stride[1], p.pad[0], p.pad[1], p.dilation[0], p.dilation[1], alignment};
  static std::mutex mutex;
  // Null: no usable engine. Never destroyed: at exit cuDNN's lazily loaded engine libraries may already
  // be gone when a plan's destructor would call into them (dnn::handle() is kept alive for the same reason).
  static auto& cache = *new std::map<Key, std::unique_ptr<Plan>>;
  const Plan* plan = nullptr;
  {
    std::lock_guard lock(mutex);
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, choose_plan(p, alignment, x, w, y)).first;
    plan = it->second.get();
  }
  if (!plan) return false;
  const Workspace ws(static_cast<std::size_t>(plan->workspace));
  execute(*plan, x, w, y, ws.ptr);
  return true;
}

}  // namespace gkd::cuda::dnn
