// CPU kernel of the fused aggregated attention (math: ../common/aggregated_attention_math.h).
//
// Forward: one task per (batch, head, block of kBlock queries). The pooled logits and the
// pooled sum of a block are two matmuls (BLAS through at::mm_out / at::addmm_ on per-thread
// scratch); the window logits, the joint softmax and the window sum run per row. Only the
// log-sum-exp of every row is kept for backward (O(N)).
//
// Backward recomputes the probabilities from the log-sum-exp. Deterministic without atomics:
//   * a task owns (head, chunk of query blocks) for every batch entry, so it alone writes
//     the position-bias gradient of those queries (summed over the batch in order); that
//     [heads, N, P] gradient is then added into the row table by column (qx) tasks, each
//     over its queries in order (the adjoint of add_pooled_bias);
//   * gradients that sum over queries (rpb, learnable tokens / bias, pooled keys / values)
//     go to per-chunk partial sums, added in chunk order afterwards; the chunks depend on N
//     only, never on the thread count;
//   * window-side key / value gradients are gathers over per-query buffers (the adjoint of
//     the window sum), each output row written once.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "aggregated_attention.h"
#include "common/aggregated_attention_math.h"
#include "common/torch_version.h"
#include "cpu/row_kernels_cpu.h"
#include "cpu/window_kernels_cpu.h"

namespace mmtransnext {
namespace {

constexpr int64_t kBlock = 128;        // queries per matmul block
constexpr int64_t kTargetChunks = 32;  // backward chunks per (head): parallelism vs partials

struct Sizes {
  int64_t B, heads, N, d, P, nblocks;
  int64_t Hk, Wk, R, row_len;  // pooled grid; rows and row length of the bias table
  Geometry g;
};

Sizes make_sizes(const AggregatedAttentionInputs& in, int64_t height, int64_t width,
                 int64_t kernel_size, int64_t pool_height, int64_t pool_width) {
  const int64_t N = in.q.size(2);
  return {in.q.size(0),     in.q.size(1),          N,
          in.q.size(3),     pool_height * pool_width, (N + kBlock - 1) / kBlock,
          pool_height,      pool_width,            in.pos_table.size(1),
          in.pos_table.size(2), make_geometry(height, width, kernel_size)};
}

// Inside the kernel's threads, ATen calls (matmuls on scratch and input views) go straight to
// the CPU kernels: no autograd, no autocast (dispatch state is per thread).
struct PlainDispatch {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  c10::impl::ExcludeDispatchKeyGuard no_autocast{c10::autocast_dispatch_keyset};
};

// rows [n0, n0 + nb) of a [N, d] matrix as an acc_t [nb, d] tensor in `dst` (a scratch).
template <typename scalar_t, typename acc_t>
at::Tensor load_block(const scalar_t* src, int64_t n0, int64_t nb, int64_t d, at::Tensor& dst) {
  acc_t* out = mutable_ptr<acc_t>(dst);
  const scalar_t* in = src + n0 * d;
  for (int64_t i = 0; i < nb * d; ++i) out[i] = acc_t(in[i]);
  return dst.narrow(0, 0, nb);
}

// out[o, i] = sum_c part[o, c, i]: the partial sums of the chunks, added in chunk order.
at::Tensor sum_chunks(const at::Tensor& part, at::ScalarType out_dtype) {
  const int64_t outer = part.size(0), chunks = part.size(1), inner = part.numel() / outer /
                                                                      std::max<int64_t>(chunks, 1);
  at::Tensor out = at::empty({outer, inner}, part.options());
  AT_DISPATCH_FLOATING_TYPES(part.scalar_type(), "sum_chunks", [&] {
    const scalar_t* p = const_ptr<scalar_t>(part);
    scalar_t* o = mutable_ptr<scalar_t>(out);
    at::parallel_for(0, outer * inner, cpu::grain_for(chunks), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t oi = t / inner, ii = t % inner;
        scalar_t s = 0;
        for (int64_t c = 0; c < chunks; ++c) s += p[(oi * chunks + c) * inner + ii];
        o[t] = s;
      }
    });
  });
  return out.to(out_dtype);
}

// Raw pointers of the inputs, and the small tensors (pooled keys / values [B, heads, P, d],
// transposed learnable tokens [heads, k*k, d], learnable bias; and both zero-padded to
// window_slots(k*k): tokens [heads, d, win], bias [heads, win]) in the accumulation type.
template <typename scalar_t>
struct Operands {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t *q, *qs, *kn, *v, *rpb, *pt;
  const int64_t* rows;
  at::Tensor kp, vp, lt_t, lb, lt_pad, lb_pad;
  explicit Operands(const AggregatedAttentionInputs& in)
      : q(const_ptr<scalar_t>(in.q)), qs(const_ptr<scalar_t>(in.q_scaled)),
        kn(const_ptr<scalar_t>(in.key)), v(const_ptr<scalar_t>(in.value)),
        rpb(const_ptr<scalar_t>(in.rpb)), pt(const_ptr<scalar_t>(in.pos_table)),
        rows(const_ptr<int64_t>(in.pos_rows)) {
    const auto acc = c10::CppTypeToScalarType<acc_t>::value;
    kp = in.key_pool.to(acc);
    vp = in.value_pool.to(acc);
    lt_t = in.learnable_tokens.transpose(1, 2).to(acc).contiguous();
    lb = in.learnable_bias.to(acc).contiguous();
    const int64_t nk = lb.size(1), pad = cpu::window_slots(nk) - nk;
    lt_pad = at::constant_pad_nd(in.learnable_tokens.to(acc), {0, pad}).contiguous();
    lb_pad = at::constant_pad_nd(lb, {0, pad}).contiguous();
  }
};

template <typename scalar_t>
std::tuple<at::Tensor, at::Tensor> forward_impl(const AggregatedAttentionInputs& in,
                                                const Sizes& s) {
  using acc_t = at::opmath_type<scalar_t>;
  const at::TensorOptions acc_opts = in.q.options().dtype(c10::CppTypeToScalarType<acc_t>::value);
  const int64_t d = s.d, P = s.P, nk = s.g.nk, win = cpu::window_slots(nk), L = win + P;
  at::Tensor out = at::empty_like(in.q);
  at::Tensor lse = at::empty({s.B, s.heads, s.N}, acc_opts);
  const Operands<scalar_t> x(in);
  // the matmuls' operands of every (batch, head), as views made once
  std::vector<at::Tensor> kp_t, vp_bh;
  for (int64_t bh = 0; bh < s.B * s.heads; ++bh) {
    kp_t.push_back(x.kp[bh / s.heads][bh % s.heads].t());
    vp_bh.push_back(x.vp[bh / s.heads][bh % s.heads]);
  }
  scalar_t* out_p = mutable_ptr<scalar_t>(out);
  acc_t* lse_p = mutable_ptr<acc_t>(lse);

  const int64_t tasks = s.B * s.heads * s.nblocks;
  at::parallel_for(0, tasks, cpu::grain_for(kBlock * (P + nk) * d * 2), [&](int64_t begin,
                                                                           int64_t end) {
    const PlainDispatch plain;
    at::Tensor q_buf = at::empty({kBlock, d}, acc_opts);
    at::Tensor o_buf = at::empty({kBlock, d}, acc_opts);
    at::Tensor pv_buf = at::empty({kBlock, d}, acc_opts);
    at::Tensor s_buf = at::empty({kBlock, L}, acc_opts);  // logit rows: window, then pooled
    const at::Tensor pooled_full = s_buf.narrow(1, win, P);
    std::vector<acc_t> w(2 * win), inv(kBlock);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t bh = t / s.nblocks, h = bh % s.heads;
      const int64_t n0 = (t % s.nblocks) * kBlock, nb = std::min(kBlock, s.N - n0);
      const int64_t base = bh * s.N;
      const cpu::AttentionRowInputs<scalar_t> r{
          s.g,          d,          P,          win,
          x.qs + base * d, x.q + base * d, x.kn + base * d, x.v + base * d,
          x.rpb + h * nk, x.pt + h * s.R * s.row_len, x.rows, s.Hk, s.Wk, s.row_len,
          const_ptr<acc_t>(x.lt_pad) + h * d * win, const_ptr<acc_t>(x.lb_pad) + h * win};
      const bool full = nb == kBlock;
      at::Tensor pooled = full ? pooled_full : pooled_full.narrow(0, 0, nb);
      at::mm_out(pooled, load_block<scalar_t, acc_t>(r.qs, n0, nb, d, q_buf), kp_t[bh]);
      acc_t* S = mutable_ptr<acc_t>(s_buf);
      acc_t* O = mutable_ptr<acc_t>(o_buf);
      for (int64_t i = 0; i < nb; ++i) {
        lse_p[base + n0 + i] =
            cpu::forward_row(r, n0 + i, S + i * L, O + i * d, inv.data() + i, w.data());
      }
      // the pooled part: the unnormalised rows @ pooled values, scaled per row
      at::Tensor pv = full ? pv_buf : pv_buf.narrow(0, 0, nb);
      at::mm_out(pv, pooled, vp_bh[bh]);
      const acc_t* PV = mutable_ptr<acc_t>(pv_buf);
      scalar_t* dst = out_p + (base + n0) * d;
      for (int64_t i = 0; i < nb; ++i) {
        for (int64_t c = 0; c < d; ++c) {
          dst[i * d + c] = scalar_t(O[i * d + c] + inv[i] * PV[i * d + c]);
        }
      }
    }
  });
  return {out, lse};
}

template <typename scalar_t>
std::vector<at::Tensor> backward_impl(const at::Tensor& grad_out,
                                      const AggregatedAttentionInputs& in,
                                      const at::Tensor& lse, const Sizes& s) {
  using acc_t = at::opmath_type<scalar_t>;
  const auto dtype = in.q.scalar_type();
  const at::TensorOptions acc_opts = in.q.options().dtype(c10::CppTypeToScalarType<acc_t>::value);
  const Geometry& g = s.g;
  const int64_t d = s.d, P = s.P, nk = g.nk, B = s.B, heads = s.heads, N = s.N;
  const int64_t per_chunk = (s.nblocks + kTargetChunks - 1) / kTargetChunks;
  const int64_t chunks = (s.nblocks + per_chunk - 1) / per_chunk;

  const Operands<scalar_t> x(in);
  const scalar_t *q = x.q, *qs = x.qs, *kn = x.kn, *v = x.v, *rpb = x.rpb, *pt = x.pt;
  const int64_t* rows = x.rows;
  const at::Tensor &kp = x.kp, &vp = x.vp, &lt_t = x.lt_t, &lb = x.lb;

  at::Tensor grad_q = at::empty_like(in.q);
  at::Tensor grad_qs = at::empty_like(in.q);
  at::Tensor grad_pb = at::empty({heads, N, P}, acc_opts);
  // per-query window weights and window-logit gradients for the key / value gathers
  at::Tensor w_buf = at::empty({B * heads, N, nk}, acc_opts);
  at::Tensor dl_buf = at::empty({B * heads, N, nk}, acc_opts);
  // per-chunk partial sums
  at::Tensor dkp_part = at::zeros({B * heads, chunks, P, d}, acc_opts);
  at::Tensor dvp_part = at::zeros({B * heads, chunks, P, d}, acc_opts);
  at::Tensor rpb_part = at::zeros({heads, chunks, nk}, acc_opts);
  at::Tensor lb_part = at::zeros({heads, chunks, nk}, acc_opts);
  at::Tensor lt_part = at::zeros({heads, chunks, nk, d}, acc_opts);

  const scalar_t* go = const_ptr<scalar_t>(grad_out);
  const acc_t* lse_p = const_ptr<acc_t>(lse);

  at::parallel_for(0, heads * chunks, 1, [&](int64_t begin, int64_t end) {
    const PlainDispatch plain;
    at::Tensor q_buf = at::empty({kBlock, d}, acc_opts);
    at::Tensor go_buf = at::empty({kBlock, d}, acc_opts);
    at::Tensor dqs_buf = at::empty({kBlock, d}, acc_opts);
    at::Tensor s_buf = at::empty({kBlock, P}, acc_opts);
    at::Tensor ds_buf = at::empty({kBlock, P}, acc_opts);
    std::vector<acc_t> a(nk), dw(nk), dq(d);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t h = t / chunks, chunk = t % chunks;
      const int64_t blk_end = std::min(s.nblocks, (chunk + 1) * per_chunk);
      acc_t* rpb_acc = mutable_ptr<acc_t>(rpb_part) + (h * chunks + chunk) * nk;
      acc_t* lb_acc = mutable_ptr<acc_t>(lb_part) + (h * chunks + chunk) * nk;
      acc_t* lt_acc = mutable_ptr<acc_t>(lt_part) + (h * chunks + chunk) * nk * d;
      const acc_t* lt_h = const_ptr<acc_t>(lt_t) + h * nk * d;
      const acc_t* lb_h = const_ptr<acc_t>(lb) + h * nk;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t bh = b * heads + h, base = bh * N;
        const at::Tensor kp_bh = kp[b][h], vp_bh = vp[b][h];
        at::Tensor dkp_acc = dkp_part[bh][chunk], dvp_acc = dvp_part[bh][chunk];
        for (int64_t blk = chunk * per_chunk; blk < blk_end; ++blk) {
          const int64_t n0 = blk * kBlock, nb = std::min(kBlock, N - n0);
          at::Tensor sb = s_buf.narrow(0, 0, nb), dsb = ds_buf.narrow(0, 0, nb);
          at::Tensor qb = load_block<scalar_t, acc_t>(qs + base * d, n0, nb, d, q_buf);
          at::Tensor gob = load_block<scalar_t, acc_t>(go + base * d, n0, nb, d, go_buf);
          at::mm_out(sb, qb, kp_bh.t());
          at::mm_out(dsb, gob, vp_bh.t());
          acc_t* S = mutable_ptr<acc_t>(s_buf);
          acc_t* dS = mutable_ptr<acc_t>(ds_buf);
          acc_t* dQS = mutable_ptr<acc_t>(dqs_buf);
          for (int64_t i = 0; i < nb; ++i) {
            const int64_t n = n0 + i, y = n / g.W, x = n % g.W;
            const acc_t l = lse_p[base + n];
            const scalar_t* q_n = q + (base + n) * d;
            const scalar_t* go_n = go + (base + n) * d;
            acc_t* srow = S + i * P;
            acc_t* dsrow = dS + i * P;
            add_pooled_bias(srow, pt + h * s.R * s.row_len, rows, y, x, s.Hk, s.Wk, s.row_len);
            cpu::exp_sum(srow, P, l);
            window_logits<acc_t>(g, y, x, qs + (base + n) * d, kn + base * d, rpb + h * nk, d,
                                 a.data());
            exp_shift(a.data(), nk, l);
            acc_t* w = mutable_ptr<acc_t>(w_buf) + (base + n) * nk;
            acc_t* dl = mutable_ptr<acc_t>(dl_buf) + (base + n) * nk;
            std::fill(dq.begin(), dq.end(), acc_t(0));
            for (int64_t j = 0; j < nk; ++j) {
              int64_t nn;
              if (!window_neighbour(g, y, x, j, &nn)) {
                dw[j] = 0;
                w[j] = 0;
                continue;
              }
              dw[j] = dot<acc_t>(go_n, v + (base + nn) * d, d);
              w[j] = a[j] + learnable_weight<acc_t>(q_n, lt_h, lb_h, j, d);
              axpy(dw[j], lt_h + j * d, dq.data(), d);       // learnable term: grad of q
              axpy(dw[j], q_n, lt_acc + j * d, d);            // ... of the tokens
              lb_acc[j] += dw[j];                             // ... of the bias
            }
            acc_t D = cpu::row_dot(srow, dsrow, P);
            for (int64_t j = 0; j < nk; ++j) D += a[j] * dw[j];
            std::copy(dw.begin(), dw.end(), dl);
            softmax_grad(a.data(), dl, nk, D);
            cpu::softmax_grad(srow, dsrow, P, D);
            acc_t* dqs_row = dQS + i * d;
            std::fill(dqs_row, dqs_row + d, acc_t(0));
            for (int64_t j = 0; j < nk; ++j) {
              int64_t nn;
              if (!window_neighbour(g, y, x, j, &nn)) continue;
              axpy(dl[j], kn + (base + nn) * d, dqs_row, d);
              rpb_acc[j] += dl[j];
            }
            acc_t* gpb_row = mutable_ptr<acc_t>(grad_pb) + (h * N + n) * P;
            if (b == 0) {
              std::copy(dsrow, dsrow + P, gpb_row);
            } else {
              cpu::add(gpb_row, dsrow, P);
            }
            scalar_t* gq = mutable_ptr<scalar_t>(grad_q) + (base + n) * d;
            for (int64_t c = 0; c < d; ++c) gq[c] = scalar_t(dq[c]);
          }
          // S now holds the pooled probabilities, dS the pooled logit gradients
          at::Tensor dqsb = dqs_buf.narrow(0, 0, nb);
          dqsb.addmm_(dsb, kp_bh);
          scalar_t* gqs = mutable_ptr<scalar_t>(grad_qs) + (base + n0) * d;
          for (int64_t e = 0; e < nb * d; ++e) gqs[e] = scalar_t(dQS[e]);
          dvp_acc.addmm_(sb.t(), gob);
          dkp_acc.addmm_(dsb.t(), qb);
        }
      }
    }
  });

  // window keys / values: gathers of the per-query buffers (adjoint of the window sum)
  at::Tensor grad_k = at::empty_like(in.key);
  at::Tensor grad_v = at::empty_like(in.value);
  cpu::window_sum<acc_t, scalar_t, scalar_t, true>(const_ptr<acc_t>(dl_buf), qs,
                                                   mutable_ptr<scalar_t>(grad_k),
                                                   B * heads, d, g);
  cpu::window_sum<acc_t, scalar_t, scalar_t, true>(const_ptr<acc_t>(w_buf), go,
                                                   mutable_ptr<scalar_t>(grad_v),
                                                   B * heads, d, g);
  auto grad_kp = sum_chunks(dkp_part, dtype).view(in.key_pool.sizes());
  auto grad_vp = sum_chunks(dvp_part, dtype).view(in.value_pool.sizes());
  auto grad_rpb = sum_chunks(rpb_part, dtype);
  auto grad_lb = sum_chunks(lb_part, dtype);
  auto grad_lt = sum_chunks(lt_part, dtype).view({heads, nk, d}).transpose(1, 2).contiguous();
  // the bias gradient into the row table: a task per (head, query column qx) owns the
  // table columns [qx * Wk, (qx + 1) * Wk) and adds its queries in order
  at::Tensor grad_pt = at::zeros({heads, s.R, s.row_len}, acc_opts);
  {
    const acc_t* gpb = const_ptr<acc_t>(grad_pb);
    acc_t* gpt = mutable_ptr<acc_t>(grad_pt);
    at::parallel_for(0, heads * g.W, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t h = t / g.W, xq = t % g.W;
        for (int64_t y = 0; y < g.H; ++y) {
          pooled_bias_row_grad(gpb + (h * N + y * g.W + xq) * P, rows, y, xq, s.Hk, s.Wk,
                               s.row_len, gpt + h * s.R * s.row_len);
        }
      }
    });
  }
  grad_pb = at::Tensor();
  return {grad_q, grad_qs, grad_k, grad_v, grad_kp, grad_vp, grad_rpb, grad_pt.to(dtype),
          grad_lt, grad_lb};
}

// 16-bit inputs run the float kernels: the inputs are widened once per call (exact), so the
// rows take the vectorised float loops instead of converting element by element; the
// arithmetic is the same fp32 either way, and the results are rounded back to the inputs'
// dtypes.
bool is_16bit(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

AggregatedAttentionInputs widened(const AggregatedAttentionInputs& in) {
  const auto f = [](const at::Tensor& t) { return t.to(at::kFloat); };
  return {f(in.q),   f(in.q_scaled), f(in.key),           f(in.value),
          f(in.key_pool), f(in.value_pool), f(in.rpb),    f(in.pos_table),
          f(in.learnable_tokens), f(in.learnable_bias), in.pos_rows};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> aggregated_attention_cpu(const AggregatedAttentionInputs& in,
                                                            int64_t height, int64_t width,
                                                            int64_t kernel_size,
                                                            int64_t pool_height,
                                                            int64_t pool_width) {
  const Sizes s = make_sizes(in, height, width, kernel_size, pool_height, pool_width);
  if (is_16bit(in.q.scalar_type())) {
    auto [out, lse] = forward_impl<float>(widened(in), s);
    return {out.to(in.q.scalar_type()), lse};
  }
  std::tuple<at::Tensor, at::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(in.q.scalar_type(), "aggregated_attention_cpu",
                             [&] { result = forward_impl<scalar_t>(in, s); });
  return result;
}

std::vector<at::Tensor> aggregated_attention_backward_cpu(const at::Tensor& grad_out,
                                                          const AggregatedAttentionInputs& in,
                                                          const at::Tensor& lse, int64_t height,
                                                          int64_t width, int64_t kernel_size,
                                                          int64_t pool_height,
                                                          int64_t pool_width) {
  const Sizes s = make_sizes(in, height, width, kernel_size, pool_height, pool_width);
  if (is_16bit(in.q.scalar_type())) {
    auto grads = backward_impl<float>(grad_out.to(at::kFloat), widened(in), lse, s);
    // every floating-point input has q's dtype (checked_inputs: check_like)
    for (auto& grad : grads) grad = grad.to(in.q.scalar_type());
    return grads;
  }
  std::vector<at::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(in.q.scalar_type(), "aggregated_attention_backward_cpu",
                             [&] { result = backward_impl<scalar_t>(grad_out, in, lse, s); });
  return result;
}

}  // namespace mmtransnext
