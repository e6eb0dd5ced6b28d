// Throughput of the vector square root and division on data in L1 (benchmarks/_kernel_bench.py):
// the units a CNTK layer's dual (one of each per entry) cannot share with the FMA pipes.
#include <ATen/cpu/vec/vec.h>

#include <chrono>
#include <cstdint>

namespace {

template <typename T, bool SQRT>
double ns_per_element(int64_t repeats) {
  using V = at::vec::Vectorized<T>;
  constexpr int64_t N = 1024;  // 4-8 KB: in L1
  alignas(64) T a[N], out[N];
  for (int64_t i = 0; i < N; ++i) out[i] = a[i] = T(1) + T(i) * T(1e-3);
  auto start = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < repeats; ++r)
    for (int64_t i = 0; i < N; i += V::size()) {
      // each repeat reads the last one's results: nothing can be hoisted out of the loop
      V x = V::loadu(out + i) + V::loadu(a + i);
      (SQRT ? x.sqrt() : V::loadu(a + i) / x).store(out + i);
    }
  std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  volatile T sink = out[N - 1];
  (void)sink;
  return took.count() / double(repeats * N);
}

}  // namespace

extern "C" {
// ns per element: [sqrt f32, div f32, sqrt f64, div f64]
void divider_ns(int64_t repeats, double* out) {
  out[0] = ns_per_element<float, true>(repeats);
  out[1] = ns_per_element<float, false>(repeats);
  out[2] = ns_per_element<double, true>(repeats);
  out[3] = ns_per_element<double, false>(repeats);
}
}
