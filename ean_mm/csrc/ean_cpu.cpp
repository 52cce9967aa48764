// EAN (Li, Li & Wen, AAAI 2024, Eqns 5-9) on CPU: one pass over memory per (n, c) plane.
//
// For a plane u (M = H*W values) of channel c = g*K + k, with per-k vectors ag = a*gamma and
// sh0 = delta + a*beta (a = alpha * omega, Eqn 6, computed by the caller):
//   forward:  mu, rstd of the plane; scale = ag[k]*rstd, shift = sh0[k] - scale*mu;
//             y = u * sigmoid(scale*u + shift)
//             with a per-channel affine u = A[c]*x + B[c] of the input x (a frozen norm folded
//             in), u is computed in registers in each sweep and never written
//   backward: s = sigmoid(scale*u + shift), gys = gy*s, gz = gys*u*(1-s),
//             Sz = sum gz, Sx = sum gz*(u-mu)*rstd,
//             gu = gys + scale*(gz - Sz/M - (u-mu)*rstd*Sx/M)
// Each plane is read from memory once and stays in cache for the later sweeps. The backward
// can take the norm's input x with a per-channel affine (u = A[c]*x + B[c]) instead of u, so
// that u need not be kept. Statistics and arithmetic in float (double for double inputs).
#include <torch/extension.h>

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <cmath>
#include <vector>

namespace {

using at::vec::Vectorized;

template <typename A>
inline Vectorized<A> vec_exp(const Vectorized<A>& z) {
  return z.exp();
}

// float: ATen's polynomial exp (20 ulp, ~1e-6 relative; exp(0) = 1 exactly), several times
// faster than the 1-ulp one, which made the kernels compute-bound.
template <>
inline Vectorized<float> vec_exp(const Vectorized<float>& z) {
  return z.exp_u20();
}

template <typename A>
inline Vectorized<A> vec_sigmoid(const Vectorized<A>& z) {
  const Vectorized<A> one(A(1));
  return one / (one + vec_exp(z.neg()));
}

template <typename A>
inline A scalar_sigmoid(A z) {
  return A(1) / (A(1) + std::exp(-z));
}

// The lanes' sum, by shuffles (a small plane's fixed cost is mostly such reductions).
template <typename A>
inline A vec_sum(const Vectorized<A>& v) {
  return at::vec::vec_reduce_all<A>(
      [](const Vectorized<A>& a, const Vectorized<A>& b) { return a + b; }, v);
}

// The plane as opmath values: the data itself for float/double, else a converted copy.
template <typename T, typename A>
inline const A* load_plane(const T* src, int64_t m, std::vector<A>& buf) {
  if constexpr (std::is_same_v<T, A>) {
    return src;
  } else {
    for (int64_t i = 0; i < m; ++i) buf[i] = static_cast<A>(src[i]);
    return buf.data();
  }
}

template <typename T, typename A>
inline void store_plane(const A* src, int64_t m, T* dst) {
  if constexpr (!std::is_same_v<T, A>) {
    for (int64_t i = 0; i < m; ++i) dst[i] = static_cast<T>(src[i]);
  }
}

// The EAN input u read from the plane x: x itself, or A*x + B (a frozen norm folded in)
// rounded once, as PyTorch's CPU BatchNorm in eval mode rounds it (one fused multiply-add of
// its alpha = weight * rsqrt(var + eps) and beta = bias - mean * alpha), so that the fold gives
// what the norm followed by EAN gives, bit for bit.
template <typename A, bool kAffine>
struct PlaneInput {
  A a = A(1), b = A(0);
  inline Vectorized<A> vec(const A* x) const {
    if constexpr (kAffine) {
      return at::vec::fmadd(Vectorized<A>::loadu(x), Vectorized<A>(a), Vectorized<A>(b));
    } else {
      return Vectorized<A>::loadu(x);
    }
  }
  // the first ``count`` values (the rest of the vector zero)
  inline Vectorized<A> vec(const A* x, int64_t count) const {
    const Vectorized<A> v = Vectorized<A>::loadu(x, count);
    if constexpr (kAffine) {
      return at::vec::fmadd(v, Vectorized<A>(a), Vectorized<A>(b));
    } else {
      return v;
    }
  }
  inline A scalar(A x) const {
    if constexpr (kAffine) {
      return std::fma(x, a, b);
    } else {
      return x;
    }
  }
};

// One plane's mean and rstd: mean and biased variance in one sweep, on values shifted by the
// plane's first one (a shift near the mean keeps sum-of-squares cancellation away).
template <typename A, bool kAffine>
void plane_stats(const A* x, int64_t m, const PlaneInput<A, kAffine>& in, double eps,
                 A& mean_out, A& rstd_out) {
  using V = Vectorized<A>;
  const int64_t vm = m - m % V::size();
  const A shift0 = in.scalar(x[0]);
  const V vshift(shift0);
  // two independent accumulator pairs: the sums' add latency, not the loads, bounded this
  V acc(A(0)), acc2(A(0)), acc_b(A(0)), acc2_b(A(0));
  int64_t i0 = 0;
  for (; i0 + 2 * V::size() <= vm; i0 += 2 * V::size()) {
    const V d = in.vec(x + i0) - vshift;
    const V e = in.vec(x + i0 + V::size()) - vshift;
    acc += d;
    acc2 = at::vec::fmadd(d, d, acc2);
    acc_b += e;
    acc2_b = at::vec::fmadd(e, e, acc2_b);
  }
  for (; i0 < vm; i0 += V::size()) {
    const V d = in.vec(x + i0) - vshift;
    acc += d;
    acc2 = at::vec::fmadd(d, d, acc2);
  }
  A total = vec_sum(acc + acc_b), sq = vec_sum(acc2 + acc2_b);
  for (int64_t i = vm; i < m; ++i) {
    const A d = in.scalar(x[i]) - shift0;
    total += d;
    sq += d * d;
  }
  const A dmean = total / A(m);
  const A var = std::max(sq / A(m) - dmean * dmean, A(0));
  mean_out = shift0 + dmean;
  rstd_out = A(1) / std::sqrt(var + A(eps));
}

// out = u * sigmoid(scale*u + shift) of one plane.
template <typename A, bool kAffine>
void plane_output(const A* x, int64_t m, const PlaneInput<A, kAffine>& in, A scale, A shift,
                  A* out) {
  using V = Vectorized<A>;
  const int64_t vm = m - m % V::size();
  const V vns(-scale), vnt(-shift), one(A(1));
  for (int64_t i = 0; i < vm; i += V::size()) {
    const V u = in.vec(x + i);
    (u / (one + vec_exp(at::vec::fmadd(u, vns, vnt)))).store(out + i);  // u * sigmoid(z)
  }
  if (m > vm) {  // the last values through the same vector arithmetic, partly filled
    const V u = in.vec(x + vm, m - vm);
    (u / (one + vec_exp(at::vec::fmadd(u, vns, vnt)))).store(out + vm, m - vm);
  }
}

// Planes [begin, end) in blocks of about 4K values (16 KB of float, within L1): the
// statistics of a block's planes, then their outputs. A small plane's statistics end in a
// chain of dependent steps (reductions, sqrt, division); computing a block of them before any
// output lets those chains overlap, and the outputs read the block again from L1 (with larger
// blocks, from L2: 1.7x the time for R50's and MobileNeXt's 56x56 layers at 2 threads).
template <typename T, bool kAffine>
void forward_planes(const T* xd, T* yd, int64_t begin, int64_t end, int64_t m, int64_t c,
                    int64_t k, const at::opmath_type<T>* agd, const at::opmath_type<T>* shd,
                    const at::opmath_type<T>* ad, const at::opmath_type<T>* bd, double eps,
                    at::opmath_type<T>* mud, at::opmath_type<T>* rsd) {
  using A = at::opmath_type<T>;
  constexpr bool kDirect = std::is_same_v<T, A>;  // float / double: no conversion buffers
  const int64_t block = kDirect ? std::max<int64_t>(1, 4096 / m) : 1;
  std::vector<A> in_buf(kDirect ? 0 : m), out_buf(kDirect ? 0 : m);
  auto input = [&](int64_t p) {
    const int64_t ch = p % c;
    if constexpr (kAffine) {
      return PlaneInput<A, true>{ad[ch], bd[ch]};
    } else {
      return PlaneInput<A, false>{};
    }
  };
  for (int64_t b0 = begin; b0 < end; b0 += block) {
    const int64_t b1 = std::min(end, b0 + block);
    for (int64_t p = b0; p < b1; ++p) {
      plane_stats<A, kAffine>(load_plane<T, A>(xd + p * m, m, in_buf), m, input(p), eps,
                              mud[p], rsd[p]);
    }
    for (int64_t p = b0; p < b1; ++p) {
      const int64_t kk = p % c % k;
      const A scale = agd[kk] * rsd[p];
      const A shift = shd[kk] - scale * mud[p];
      A* out = kDirect ? reinterpret_cast<A*>(yd + p * m) : out_buf.data();
      plane_output<A, kAffine>(load_plane<T, A>(xd + p * m, m, in_buf), m, input(p), scale,
                               shift, out);
      store_plane<T, A>(out, m, yd + p * m);
    }
  }
}

template <typename T>
void forward_impl(const at::Tensor& x, const at::Tensor& ag, const at::Tensor& sh0,
                  const at::Tensor& aff_a, const at::Tensor& aff_b, bool affine, double eps,
                  at::Tensor& y, at::Tensor& mu, at::Tensor& rstd) {
  using A = at::opmath_type<T>;
  const int64_t n = x.size(0), c = x.size(1), m = x.numel() / (n * c), k = ag.numel();
  const T* xd = x.const_data_ptr<T>();
  T* yd = y.data_ptr<T>();
  A* mud = mu.data_ptr<A>();
  A* rsd = rstd.data_ptr<A>();
  const A* agd = ag.const_data_ptr<A>();
  const A* shd = sh0.const_data_ptr<A>();
  const A* ad = affine ? aff_a.const_data_ptr<A>() : nullptr;
  const A* bd = affine ? aff_b.const_data_ptr<A>() : nullptr;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(m, 1));
  at::parallel_for(0, n * c, grain, [&](int64_t begin, int64_t end) {
    if (affine) {
      forward_planes<T, true>(xd, yd, begin, end, m, c, k, agd, shd, ad, bd, eps, mud, rsd);
    } else {
      forward_planes<T, false>(xd, yd, begin, end, m, c, k, agd, shd, ad, bd, eps, mud, rsd);
    }
  });
}

template <typename T>
void backward_impl(const at::Tensor& gy, const at::Tensor& x, const at::Tensor& mu,
                   const at::Tensor& rstd, const at::Tensor& ag, const at::Tensor& sh0,
                   const at::Tensor& aff_a, const at::Tensor& aff_b, bool affine, bool need_gu,
                   at::Tensor& gu, at::Tensor& sum_gz, at::Tensor& sum_gz_xhat) {
  using A = at::opmath_type<T>;
  using V = Vectorized<A>;
  const int64_t n = x.size(0), c = x.size(1), m = x.numel() / (n * c), k = ag.numel();
  const T* gyd = gy.const_data_ptr<T>();
  const T* xd = x.const_data_ptr<T>();
  T* gud = need_gu ? gu.data_ptr<T>() : nullptr;
  const A* mud = mu.const_data_ptr<A>();
  const A* rsd = rstd.const_data_ptr<A>();
  const A* agd = ag.const_data_ptr<A>();
  const A* shd = sh0.const_data_ptr<A>();
  const A* ad = affine ? aff_a.const_data_ptr<A>() : nullptr;
  const A* bd = affine ? aff_b.const_data_ptr<A>() : nullptr;
  A* szd = sum_gz.data_ptr<A>();
  A* sxd = sum_gz_xhat.data_ptr<A>();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(m, 1));
  at::parallel_for(0, n * c, grain, [&](int64_t begin, int64_t end) {
    std::vector<A> ubuf(m), gbuf(m), gys_buf(m), gz_buf(m), out_buf(m);
    const int64_t vm = m - m % V::size();
    for (int64_t p = begin; p < end; ++p) {
      const int64_t ch = p % c;
      // u: the EAN input, from x itself or through the norm's affine
      const A* u;
      if (affine) {
        const A a = ad[ch], b = bd[ch];
        const T* src = xd + p * m;
        for (int64_t i = 0; i < m; ++i) ubuf[i] = std::fma(static_cast<A>(src[i]), a, b);  // as forward
        u = ubuf.data();
      } else {
        u = load_plane<T, A>(xd + p * m, m, ubuf);
      }
      const A* g = load_plane<T, A>(gyd + p * m, m, gbuf);
      const A mean = mud[p], rs = rsd[p];
      const A scale = agd[ch % k] * rs;
      const A shift = shd[ch % k] - scale * mean;
      const V vs(scale), vt(shift), one(A(1));
      V acc_z(A(0)), acc_zu(A(0));
      for (int64_t i = 0; i < vm; i += V::size()) {
        const V v = V::loadu(u + i);
        const V s = vec_sigmoid(vs * v + vt);
        const V gys = V::loadu(g + i) * s;
        const V gz = gys * v * (one - s);
        gys.store(gys_buf.data() + i);
        gz.store(gz_buf.data() + i);
        acc_z += gz;
        acc_zu += gz * v;
      }
      A sz = vec_sum(acc_z), szu = vec_sum(acc_zu);
      for (int64_t i = vm; i < m; ++i) {
        const A s = scalar_sigmoid(scale * u[i] + shift);
        const A gys = g[i] * s;
        const A gz = gys * u[i] * (A(1) - s);
        gys_buf[i] = gys;
        gz_buf[i] = gz;
        sz += gz;
        szu += gz * u[i];
      }
      const A sx = rs * (szu - mean * sz);  // sum gz * (u - mu) * rstd
      szd[p] = sz;
      sxd[p] = sx;
      if (!need_gu) continue;
      // gu = gys + scale*gz + cx*u + c1  ==  gys + scale*(gz - Sz/M - uhat*Sx/M)
      const A cx = -scale * rs * sx / A(m);
      const A c1 = -scale * sz / A(m) - cx * mean;
      A* out = std::is_same_v<T, A> ? reinterpret_cast<A*>(gud + p * m) : out_buf.data();
      const V vcx(cx), vc1(c1);
      for (int64_t i = 0; i < vm; i += V::size()) {
        const V r = V::loadu(gys_buf.data() + i) + vs * V::loadu(gz_buf.data() + i) +
                    vcx * V::loadu(u + i) + vc1;
        r.store(out + i);
      }
      for (int64_t i = vm; i < m; ++i) out[i] = gys_buf[i] + scale * gz_buf[i] + cx * u[i] + c1;
      store_plane<T, A>(out, m, gud + p * m);
    }
  });
}

void check_input(const at::Tensor& x, const at::Tensor& ag, const at::Tensor& sh0) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 4 && x.is_contiguous(),
              "ean_mm._C: x must be a contiguous 4-d CPU tensor, got ", x.sizes());
  TORCH_CHECK(x.size(0) * x.size(1) > 0 && x.size(1) % ag.numel() == 0,
              "ean_mm._C: channels ", x.size(1), " not a multiple of K = ", ag.numel());
  TORCH_CHECK(ag.is_contiguous() && sh0.is_contiguous() && ag.numel() == sh0.numel(),
              "ean_mm._C: ag and sh0 must be contiguous vectors of K values");
}

void check_affine(const at::Tensor& x, const at::Tensor& ag,
                  const c10::optional<at::Tensor>& aff_a, const c10::optional<at::Tensor>& aff_b) {
  TORCH_CHECK(aff_a.has_value() == aff_b.has_value(),
              "ean_mm._C: give both aff_a and aff_b (the per-channel affine), or neither");
  if (!aff_a.has_value()) return;
  for (const auto* t : {&*aff_a, &*aff_b}) {
    TORCH_CHECK(t->is_contiguous() && t->numel() == x.size(1) &&
                    t->scalar_type() == ag.scalar_type(),
                "ean_mm._C: aff_a and aff_b must be contiguous vectors of C = ", x.size(1),
                " values in ag's dtype ", ag.scalar_type());
  }
}

std::vector<at::Tensor> ean_forward(const at::Tensor& x, const at::Tensor& ag,
                                    const at::Tensor& sh0, double eps,
                                    const c10::optional<at::Tensor>& aff_a,
                                    const c10::optional<at::Tensor>& aff_b) {
  check_input(x, ag, sh0);
  check_affine(x, ag, aff_a, aff_b);
  const bool affine = aff_a.has_value();
  const at::Tensor none;
  auto y = at::empty_like(x);
  const auto stats = ag.options();
  auto mu = at::empty({x.size(0), x.size(1)}, stats);
  auto rstd = at::empty({x.size(0), x.size(1)}, stats);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "ean_forward", [&] {
    TORCH_CHECK(ag.scalar_type() == c10::CppTypeToScalarType<at::opmath_type<scalar_t>>::value,
                "ean_mm._C: ag must have the input's compute dtype");
    forward_impl<scalar_t>(x, ag, sh0, affine ? *aff_a : none, affine ? *aff_b : none, affine,
                           eps, y, mu, rstd);
  });
  return {y, mu, rstd};
}

std::vector<at::Tensor> ean_backward(const at::Tensor& gy, const at::Tensor& x,
                                     const at::Tensor& mu, const at::Tensor& rstd,
                                     const at::Tensor& ag, const at::Tensor& sh0,
                                     const c10::optional<at::Tensor>& aff_a,
                                     const c10::optional<at::Tensor>& aff_b, bool need_gu) {
  check_input(x, ag, sh0);
  check_affine(x, ag, aff_a, aff_b);
  TORCH_CHECK(gy.sizes() == x.sizes() && gy.is_contiguous() &&
                  gy.scalar_type() == x.scalar_type(),
              "ean_mm._C: grad must be contiguous, of x's shape and dtype");
  const bool affine = aff_a.has_value();
  auto gu = need_gu ? at::empty_like(x) : at::Tensor();
  auto sum_gz = at::empty_like(mu);
  auto sum_gz_xhat = at::empty_like(mu);
  const at::Tensor none;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "ean_backward", [&] {
    backward_impl<scalar_t>(gy, x, mu, rstd, ag, sh0, affine ? *aff_a : none,
                            affine ? *aff_b : none, affine, need_gu, gu, sum_gz, sum_gz_xhat);
  });
  return {gu, sum_gz, sum_gz_xhat};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("ean_forward", &ean_forward, "EAN forward: (y, mu, rstd)", py::arg("x"), py::arg("ag"),
        py::arg("sh0"), py::arg("eps"), py::arg("aff_a") = py::none(),
        py::arg("aff_b") = py::none());
  m.def("ean_backward", &ean_backward, "EAN backward: (grad_u, sum_gz, sum_gz_xhat)");
}
