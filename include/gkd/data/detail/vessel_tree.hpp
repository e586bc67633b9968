// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private: 2D vessel trees by space colonization (Runions et al. 2005/2007), Murray's-law radii and
/// the rasterised "normalised distance" field `u = min over segments of distance / radius` from which
/// the generators take exact masks (`u < s` for a global radius scale `s`) and soft vessel profiles.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numbers>
#include <vector>

#include "gkd/core/random.hpp"

namespace gkd::data::detail {

/// One centreline node; the segment parent→node carries `radius`.
struct TreeNode {
  double x = 0, y = 0;
  int parent = -1;
  int tree = 0;
  double dx = 0, dy = 0;  ///< direction of the last growth step (unit or zero)
  double radius = 0;
  int children = 0;
  int first_child = -1;
  int since_branch = 0;    ///< growth steps since the last branch point on the path to the root
  bool can_sprout = true;  ///< whether a second child may start here
};

/// Space-colonization parameters, in the units of the node coordinates.
struct Colonization {
  double influence = 0.08;  ///< d_i: an attractor pulls its nearest node within this distance
  double kill = 0.015;      ///< d_k: an attractor is removed once a node is this close
  double step = 0.005;      ///< D: growth step
  int max_iterations = 600;
  double momentum = 0.4;    ///< weight of a node's previous direction (smooth centrelines)
  double tortuosity = 0.35; ///< weight of a random unit direction per step
  int branch_gap = 0;       ///< a node may start a second child only this many steps after a branch point
};

/// Grows `nodes` (seeded with at least one root per tree) towards `attractors`. Trees are split into
/// `groups` (tree t grows in iterations where iteration % groups == group_of(t)), so that e.g. arteries
/// and veins take turns on a shared attractor set. `inside(x, y)` rejects steps that leave the region.
/// Each attractor caches its nearest node per group; only the nodes added since are compared, so the
/// cost is proportional to nodes × attractors within the influence distance.
inline void colonize(std::vector<TreeNode>& nodes, const std::vector<std::array<double, 2>>& attractors,
                     const Colonization& p, int groups, const std::function<int(int)>& group_of,
                     const std::function<bool(double, double)>& inside, Generator& gen) {
  if (nodes.empty() || attractors.empty()) return;
  double x0 = attractors[0][0], y0 = attractors[0][1], x1 = x0, y1 = y0;
  for (const auto& a : attractors) {
    x0 = std::min(x0, a[0]), y0 = std::min(y0, a[1]), x1 = std::max(x1, a[0]), y1 = std::max(y1, a[1]);
  }
  const double cell = p.influence;
  const int gw = int((x1 - x0) / cell) + 1, gh = int((y1 - y0) / cell) + 1;
  std::vector<std::vector<int>> grid(std::size_t(gw) * gh);  // attractor indices per cell
  for (int a = 0; a < int(attractors.size()); ++a)
    grid[std::size_t(std::min(int((attractors[std::size_t(a)][1] - y0) / cell), gh - 1)) * gw +
         std::size_t(std::min(int((attractors[std::size_t(a)][0] - x0) / cell), gw - 1))]
        .push_back(a);
  const std::size_t na = attractors.size(), ng = std::size_t(groups);
  constexpr double inf = std::numeric_limits<double>::max();
  std::vector<double> best_any(na, inf), best_d2(na * ng, inf);
  std::vector<int> best_idx(na * ng, -1);
  std::vector<char> alive(na, 1);
  const auto update = [&](int i) {
    const auto& n = nodes[std::size_t(i)];
    const int g = group_of(n.tree);
    const int cx = int(std::floor((n.x - x0) / cell)), cy = int(std::floor((n.y - y0) / cell));
    for (int gy = std::max(0, cy - 1); gy <= std::min(gh - 1, cy + 1); ++gy)
      for (int gx = std::max(0, cx - 1); gx <= std::min(gw - 1, cx + 1); ++gx)
        for (int a : grid[std::size_t(gy) * gw + gx]) {
          const auto& at = attractors[std::size_t(a)];
          const double d2 = (n.x - at[0]) * (n.x - at[0]) + (n.y - at[1]) * (n.y - at[1]);
          best_any[std::size_t(a)] = std::min(best_any[std::size_t(a)], d2);
          const std::size_t k = std::size_t(a) * ng + std::size_t(g);
          if (d2 < best_d2[k]) best_d2[k] = d2, best_idx[k] = i;
        }
  };
  for (int i = 0; i < int(nodes.size()); ++i) update(i);

  std::vector<double> sx, sy;
  std::vector<int> pulls;
  int idle_rounds = 0;
  std::size_t remaining = na;
  for (int it = 0; it < p.max_iterations && remaining > 0 && idle_rounds < groups * 3; ++it) {
    const std::size_t group = std::size_t(it % groups);
    sx.assign(nodes.size(), 0.0);
    sy.assign(nodes.size(), 0.0);
    pulls.assign(nodes.size(), 0);
    for (std::size_t a = 0; a < na; ++a) {
      if (!alive[a]) continue;
      if (best_any[a] < p.kill * p.kill) {
        alive[a] = 0, --remaining;
        continue;
      }
      const std::size_t k = a * ng + group;
      if (best_idx[k] < 0 || best_d2[k] >= p.influence * p.influence) continue;
      const auto& n = nodes[std::size_t(best_idx[k])];
      const double d = std::sqrt(best_d2[k]) + 1e-12;
      sx[std::size_t(best_idx[k])] += (attractors[a][0] - n.x) / d;
      sy[std::size_t(best_idx[k])] += (attractors[a][1] - n.y) / d;
      ++pulls[std::size_t(best_idx[k])];
    }
    bool grew = false;
    const std::size_t count = nodes.size();
    for (std::size_t i = 0; i < count; ++i) {
      if (pulls[i] == 0 || nodes[i].children >= 2) continue;
      if (nodes[i].children == 1 && (!nodes[i].can_sprout || nodes[i].since_branch < p.branch_gap)) continue;
      double len = std::hypot(sx[i], sy[i]);
      if (len < 1e-9) continue;
      const double phi = gen.uniform(0.0, 2 * std::numbers::pi);
      double dx = sx[i] / len + p.momentum * nodes[i].dx + p.tortuosity * std::cos(phi);
      double dy = sy[i] / len + p.momentum * nodes[i].dy + p.tortuosity * std::sin(phi);
      len = std::hypot(dx, dy);
      if (len < 1e-9) continue;
      dx /= len, dy /= len;
      const double nx = nodes[i].x + p.step * dx, ny = nodes[i].y + p.step * dy;
      if (inside && !inside(nx, ny)) continue;
      TreeNode n;
      n.x = nx, n.y = ny, n.parent = int(i), n.tree = nodes[i].tree, n.dx = dx, n.dy = dy;
      n.since_branch = nodes[i].children == 0 ? nodes[i].since_branch + 1 : 0;
      if (nodes[i].children++ == 0) nodes[i].first_child = int(nodes.size());
      nodes.push_back(n);
      update(int(nodes.size()) - 1);
      grew = true;
    }
    idle_rounds = grew ? 0 : idle_rounds + 1;
  }
}

/// Moves every node with exactly one child halfway towards the mean of its parent and child
/// (`iterations` times): a cheap smoothing of the centrelines that keeps roots and branch points.
inline void smooth_centrelines(std::vector<TreeNode>& nodes, int iterations) {
  for (int k = 0; k < iterations; ++k) {
    std::vector<std::array<double, 2>> next(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto& n = nodes[i];
      next[i] = {n.x, n.y};
      if (n.parent < 0 || n.children != 1) continue;
      const auto& a = nodes[std::size_t(n.parent)];
      const auto& b = nodes[std::size_t(n.first_child)];
      next[i] = {0.5 * n.x + 0.25 * (a.x + b.x), 0.5 * n.y + 0.25 * (a.y + b.y)};
    }
    for (std::size_t i = 0; i < nodes.size(); ++i) nodes[i].x = next[i][0], nodes[i].y = next[i][1];
  }
}

/// Radii by Murray's law from the leaves up: leaves get `leaf_radius × leaf_scale(tree)`, a parent
/// `r_p = (Σ r_c^γ)^(1/γ)`. Children are always stored after their parent.
inline void murray_radii(std::vector<TreeNode>& nodes, double leaf_radius, double gamma,
                         const std::function<double(int)>& leaf_scale) {
  std::vector<double> acc(nodes.size(), 0.0);
  for (std::size_t i = nodes.size(); i-- > 0;) {
    auto& n = nodes[i];
    n.radius = n.children == 0 ? leaf_radius * leaf_scale(n.tree) : std::pow(acc[i], 1.0 / gamma);
    if (n.parent >= 0) acc[std::size_t(n.parent)] += std::pow(n.radius, gamma);
  }
}

/// Per pixel of a w×h grid: `u` = min over segments of distance / radius (infinity where no segment is
/// within `reach` radii), and the radius (in pixels) and tree of the segment attaining it. Node
/// coordinates map to pixels by `(x - x0) * scale`; pixel (i, j) samples the point (i + 0.5, j + 0.5).
struct VesselField {
  int w = 0, h = 0;
  std::vector<float> u, radius;
  std::vector<std::int16_t> tree;
};

inline VesselField vessel_field(const std::vector<TreeNode>& nodes, int w, int h, double x0, double y0, double scale,
                                double reach) {
  VesselField f{w, h, std::vector<float>(std::size_t(w) * h, std::numeric_limits<float>::infinity()),
                std::vector<float>(std::size_t(w) * h, 0.f), std::vector<std::int16_t>(std::size_t(w) * h, -1)};
  const auto capsule = [&](const TreeNode& a, const TreeNode& b, double radius, int tree) {
    const double ax = (a.x - x0) * scale, ay = (a.y - y0) * scale, bx = (b.x - x0) * scale, by = (b.y - y0) * scale;
    const double r = radius * scale, extent = r * reach;
    const int i0 = std::max(0, int(std::floor(std::min(ax, bx) - extent))), i1 = std::min(w - 1, int(std::ceil(std::max(ax, bx) + extent)));
    const int j0 = std::max(0, int(std::floor(std::min(ay, by) - extent))), j1 = std::min(h - 1, int(std::ceil(std::max(ay, by) + extent)));
    const double ex = bx - ax, ey = by - ay, len2 = ex * ex + ey * ey, inv_r2 = 1.0 / (r * r);
    const float reach2 = float(reach * reach);
    for (int j = j0; j <= j1; ++j)
      for (int i = i0; i <= i1; ++i) {
        const double px = i + 0.5 - ax, py = j + 0.5 - ay;
        const double t = len2 > 0 ? std::clamp((px * ex + py * ey) / len2, 0.0, 1.0) : 0.0;
        const double qx = px - t * ex, qy = py - t * ey;
        const float u2 = float((qx * qx + qy * qy) * inv_r2);
        const std::size_t k = std::size_t(j) * w + i;
        if (u2 < f.u[k] && u2 <= reach2) f.u[k] = u2, f.radius[k] = float(r), f.tree[k] = std::int16_t(tree);
      }
  };
  // Unbranched runs keep one radius (Murray's law changes it only at branch points): draw each run as
  // the longest chords that stay within 0.1 px (and 0.05 radii) of every centreline node they skip.
  std::vector<int> run;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    if (n.parent < 0) continue;
    const auto& p = nodes[std::size_t(n.parent)];
    if (p.children == 1 && p.parent >= 0) continue;  // continues the run through p, drawn from its start
    run.assign({n.parent, int(i)});
    for (int c = int(i); nodes[std::size_t(c)].children == 1;) run.push_back(c = nodes[std::size_t(c)].first_child);
    const double tol = std::min(0.1, 0.05 * n.radius * scale) / scale;
    for (std::size_t a = 0; a + 1 < run.size();) {
      std::size_t b = a + 1;
      while (b + 1 < run.size()) {
        const auto& A = nodes[std::size_t(run[a])];
        const auto& B = nodes[std::size_t(run[b + 1])];
        const double ex = B.x - A.x, ey = B.y - A.y, len = std::hypot(ex, ey);
        bool straight = len > 0;
        for (std::size_t k = a + 1; k <= b && straight; ++k) {
          const auto& K = nodes[std::size_t(run[k])];
          straight = std::abs((K.x - A.x) * ey - (K.y - A.y) * ex) / len < tol;
        }
        if (!straight) break;
        ++b;
      }
      // a run's radius is its first segment's (equal along the run up to rounding)
      capsule(nodes[std::size_t(run[a])], nodes[std::size_t(run[b])], nodes[std::size_t(run[a + 1])].radius, n.tree);
      a = b;
    }
  }
  for (auto& u : f.u) u = std::sqrt(u);
  return f;
}

}  // namespace gkd::data::detail
