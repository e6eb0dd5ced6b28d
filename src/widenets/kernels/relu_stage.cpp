// One CNTK layer of a chunk of input pairs in the padded GAP layout (kernels/gap_chunks.py):
// the joint-shift window sum of K and Theta (cntk.md §1.2-1.3), the affine rule and the
// arc-cosine dual of a ReLU-family activation a*min(u,0) + b*max(u,0) (Cho & Saul 2009; its
// derivative's dual for the NTK, Jacot et al. 2018; Arora et al. 2019, CNTK), in one pass.
//
// Same arithmetic as the PyTorch path (affine_pair, clip_covariance, angle, atan2_poly,
// abrelu_dual), written with PyTorch's portable SIMD type at::vec::Vectorized.
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace {

using at::vec::Vectorized;
constexpr int U = 4;  // vectors per step

template <typename T> struct Atan;
template <> struct Atan<double> {  // widenets.kernels.gaussian._ATAN64, lowest degree first
  static constexpr int n = 10;
  static constexpr double c[n] = {-0.3333333333333001, 0.19999999999062132,
                                  -0.14285714193373011, 0.11111106585838057,
                                  -0.0909078100448785, 0.07690050350453657,
                                  -0.06640978676645641, 0.05691851840917154,
                                  -0.04357253738852811, 0.02123880364848641};
};
template <> struct Atan<float> {  // _ATAN32
  static constexpr int n = 4;
  static constexpr float c[n] = {-3.33329491539e-1f, 1.99777106478e-1f, -1.38776856032e-1f,
                                 8.05374449538e-2f};
};

// atan2(y, x) for y >= 0, and pi/2 at (0, 0) (gaussian.atan2_poly and angle): range reduction to |u| <= tan(pi/8), then
// u + u z P(z) with z = u^2
template <typename T>
inline Vectorized<T> atan2_nonneg(const Vectorized<T>& y, const Vectorized<T>& x) {
  using V = Vectorized<T>;
  const T pi = T(3.141592653589793238);
  V ay = y, ax = x.abs();
  // clamp_max/clamp_min are single min/max instructions (minimum/maximum also propagate NaN,
  // which cannot occur here)
  V num = at::vec::clamp_max(ay, ax), den = at::vec::clamp_min(ay, ax);
  V mid = num > V(T(0.41421356237309503)) * den;
  V u = V::blendv(num, num - den, mid) /
        at::vec::clamp_min(V::blendv(den, num + den, mid), V(std::numeric_limits<T>::min()));
  V z = u * u, p(Atan<T>::c[Atan<T>::n - 1]);
  for (int i = Atan<T>::n - 2; i >= 0; --i) p = at::vec::fmadd(p, z, V(Atan<T>::c[i]));
  V theta = at::vec::fmadd(u * z, p, u);
  theta = V::blendv(theta, theta + V(T(pi / 4)), mid);
  // >= rather than >: atan2(0, 0) = pi/2 (neural-tangents' convention, gaussian.angle)
  theta = V::blendv(theta, V(T(pi / 2)) - theta, ay >= ax);
  return V::blendv(theta, V(pi) - theta, x < V(T(0)));
}

// The constants of one stage and one block of N vectors of entries, from `at` on: the last
// vector holds `last` entries (PARTIAL) or a full vector.
template <typename T>
struct Stage {
  using V = Vectorized<T>;
  const T *kin, *tin, *inside;
  T *kout, *tout;
  const int64_t* offsets;
  int64_t taps;
  V eps4, zero, factor, mean, inv_taps, w2, b2, t_k, t_1;

  static V load(const T* p, bool partial, int64_t n) {
    return partial ? V::loadu(p, n) : V::loadu(p);
  }

  template <int N, bool PARTIAL>
  inline void block(int64_t at, int64_t j, const V& q1, const T* q2, const V& p1,
                    const T* p2, int64_t last, double* acc_k, double* acc_t) const {
    constexpr int64_t W = V::size();
    V k[N], t[N], c[N], s[N], theta[N];
    for (int u = 0; u < N; ++u) k[u] = t[u] = zero;
    for (int64_t o = 0; o < taps; ++o)  // window sum: shifted contiguous runs
      for (int u = 0; u < N; ++u) {
        const bool partial = PARTIAL && u == N - 1;
        k[u] += load(kin + at + offsets[o] + u * W, partial, last);
        t[u] += load(tin + at + offsets[o] + u * W, partial, last);
      }
    for (int u = 0; u < N; ++u) {
      const bool partial = PARTIAL && u == N - 1;
      const V kk = k[u] * inv_taps;
      c[u] = at::vec::fmadd(w2, kk, b2);  // affine_pair
      t[u] = at::vec::fmadd(t_k, kk, at::vec::fmadd(w2, t[u] * inv_taps, t_1));
      const V q = q1 * load(q2 + j + u * W, partial, last);  // clip_covariance
      c[u] = at::vec::clamp_min(at::vec::clamp_max(c[u], q), zero - q);
      const V qq = q * q;
      c[u] = V::blendv(c[u], V::blendv(q, zero - q, c[u] < zero), qq - c[u] * c[u] <= eps4 * qq);
      // angle: v1 v2 - c^2 within a few rounding errors of 0 is 0 (v1 v2 rounds differently
      // from q^2, so this catches correlations of +-1 that the snap above missed)
      const V prod = p1 * load(p2 + j + u * W, partial, last);
      const V s2 = prod - c[u] * c[u];
      s[u] = V::blendv(s2, zero, s2 <= eps4 * prod).sqrt();
    }
    for (int u = 0; u < N; ++u) theta[u] = atan2_nonneg(s[u], c[u]);
    for (int u = 0; u < N; ++u) {
      const bool partial = PARTIAL && u == N - 1;
      const V kdot = mean - factor * theta[u];  // abrelu_dual
      const V in = load(inside + j + u * W, partial, last);
      const V k_out = in * at::vec::fmadd(factor, s[u], kdot * c[u]);
      const V t_out = in * (t[u] * kdot);
      if (partial) {
        k_out.store(kout + at + u * W, last);
        t_out.store(tout + at + u * W, last);
      } else {
        k_out.store(kout + at + u * W);
        t_out.store(tout + at + u * W);
      }
      if (acc_k) {  // the GAP means' sums, in float64 (lanes past `last` hold zeros)
        alignas(64) T kv[W], tv[W];
        k_out.store(kv);
        t_out.store(tv);
        for (int64_t l = 0; l < W; ++l) {
          acc_k[l] += double(kv[l]);
          acc_t[l] += double(tv[l]);
        }
      }
    }
  }
};

// kin/tin/kout/tout point at the first entry of the chunk (after the margin). With `sums`
// (pairs, 2) the sums of each pair's K and Theta over all position pairs are written there. For each pair
// and each image position p1 of the first input (padded flat index pos1[i1]), the second
// input's image positions lie within `span` consecutive entries from the row's start; the
// slots among them are computed too (long vector loops) and zeroed by `inside` (1 on the
// image, 0 on slots). v1 (pairs, S): the first inputs' variances before the activation at
// the image positions, r1 their square roots; v2, r2 (pairs, Q): the second inputs', padded
// (1 on slots).
template <typename T>
void stage(const T* kin, const T* tin, T* kout, T* tout, const T* r1, const T* r2,
           const T* v1, const T* v2,
           int64_t pairs, int64_t Q, const int64_t* pos1, int64_t S, const T* inside,
           int64_t span, const int64_t* offsets, int64_t taps, double w2, double b2,
           double fan_in, int64_t ntk_parameterization, double bias_one, double a, double b,
           double* sums, int64_t threads) {
  using V = Vectorized<T>;
  constexpr int64_t W = V::size();
  // affine_pair's NTK rule as t_k K + w2 Theta + t_1: "ntk" adds K' = w2 K + b2, "standard"
  // adds fan_in K + (1 if there is a bias)
  const Stage<T> st{kin, tin, inside, kout, tout, offsets, taps,
                    V(T(4) * std::numeric_limits<T>::epsilon()), V(T(0)),
                    V(T((a - b) * (a - b) / (2 * 3.141592653589793238))),
                    V(T((a * a + b * b) / 2)), V(T(1) / T(taps)), V(T(w2)), V(T(b2)),
                    V(T(ntk_parameterization ? w2 : fan_in)),
                    V(T(ntk_parameterization ? b2 : bias_one))};
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t pr = 0; pr < pairs; ++pr) {
    double acc_k[W] = {}, acc_t[W] = {};
    double* sum_k = sums ? acc_k : nullptr;
    double* sum_t = sums ? acc_t : nullptr;
    for (int64_t i1 = 0; i1 < S; ++i1) {
      const V q1(r1[pr * S + i1]), p1(v1[pr * S + i1]);
      const int64_t base = pr * Q * Q + pos1[i1] * Q;
      const T *q2 = r2 + pr * Q, *p2 = v2 + pr * Q;
      int64_t j = 0;
      // U vectors at a time: independent chains (the polynomial, the square root and the
      // division) overlap instead of waiting on each other's latency
      for (; j + U * W <= span; j += U * W)
        st.template block<U, false>(base + j, j, q1, q2, p1, p2, W, sum_k, sum_t);
      for (; j + W <= span; j += W)
        st.template block<1, false>(base + j, j, q1, q2, p1, p2, W, sum_k, sum_t);
      if (j < span)
        st.template block<1, true>(base + j, j, q1, q2, p1, p2, span - j, sum_k, sum_t);
    }
    if (sums) {
      sums[2 * pr] = sums[2 * pr + 1] = 0;
      for (int64_t l = 0; l < W; ++l) {
        sums[2 * pr] += acc_k[l];
        sums[2 * pr + 1] += acc_t[l];
      }
    }
  }
}

}  // namespace

// the C entry points, one per dtype (ctypes argument order: native_stage._library)
#define WIDENETS_RELU_STAGE(NAME, T)                                                          \
  extern "C" void NAME(const T* kin, const T* tin, T* kout, T* tout, const T* r1,            \
                       const T* r2, const T* v1, const T* v2, int64_t pairs, int64_t Q,       \
                       const int64_t* pos1, int64_t S, const T* inside, int64_t span,         \
                       const int64_t* offsets, int64_t taps, double w2, double b2,            \
                       double fan_in, int64_t ntk_parameterization, double bias_one,          \
                       double a, double b, double* sums, int64_t threads) {                   \
    stage<T>(kin, tin, kout, tout, r1, r2, v1, v2, pairs, Q, pos1, S, inside, span, offsets, \
             taps, w2, b2, fan_in, ntk_parameterization, bias_one, a, b, sums, threads);     \
  }

WIDENETS_RELU_STAGE(relu_stage_f64, double)
WIDENETS_RELU_STAGE(relu_stage_f32, float)
