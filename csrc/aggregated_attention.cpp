// Input checks and CPU registration of the fused aggregated attention. The rules mirror
// mmtransnext/ops/checks.py (the fake kernels and the Python entry point), message for
// message; tests/test_ops/test_aggregated_attention.py runs every bad-input case on both.
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include <string>
#include <vector>

#include "aggregated_attention.h"
#include "common/checks.h"

namespace mmtransnext {
namespace {

constexpr const char* kOp = "aggregated_attention";

AggregatedAttentionInputs checked_inputs(const char* op, const at::Tensor& q,
                                         const at::Tensor& q_scaled, const at::Tensor& key,
                                         const at::Tensor& value, const at::Tensor& key_pool,
                                         const at::Tensor& value_pool, const at::Tensor& rpb,
                                         const at::Tensor& pos_table,
                                         const at::Tensor& learnable_tokens,
                                         const at::Tensor& learnable_bias,
                                         const at::Tensor& pos_rows, int64_t height,
                                         int64_t width, int64_t kernel_size, int64_t pool_height,
                                         int64_t pool_width) {
  check_window(op, height, width, kernel_size);
  const std::vector<std::pair<const char*, const at::Tensor*>> all = {
      {"q", &q}, {"q_scaled", &q_scaled}, {"key", &key}, {"value", &value},
      {"key_pool", &key_pool}, {"value_pool", &value_pool}, {"rpb", &rpb},
      {"pos_table", &pos_table}, {"learnable_tokens", &learnable_tokens},
      {"learnable_bias", &learnable_bias}};
  TORCH_CHECK(q.dim() == 4, op, ": expected 4-D [B, heads, N, C] tensors, got q ", q.sizes());
  TORCH_CHECK(at::isFloatingType(q.scalar_type()), op,
              ": expected floating-point tensors, got ", q.scalar_type());
  for (const auto& t : all) check_like(op, t.first, *t.second, q);
  TORCH_CHECK(pos_rows.scalar_type() == at::kLong && pos_rows.device() == q.device(), op,
              ": pos_rows must be an int64 tensor on ", q.device(), ", got ",
              pos_rows.scalar_type(), " on ", pos_rows.device());
  const int64_t B = q.size(0), heads = q.size(1), N = q.size(2), d = q.size(3);
  TORCH_CHECK(B >= 1, op, ": empty batch (B = 0): nothing to attend to");
  check_tokens(op, q, height, width);
  TORCH_CHECK(pool_height >= 1 && pool_width >= 1, op, ": pooled grid must be positive, got ",
              pool_height, " x ", pool_width);
  TORCH_CHECK(pool_height <= height && pool_width <= width, op, ": pooled grid ", pool_height,
              " x ", pool_width, " is larger than the query grid ", height, " x ", width,
              ": the pooled path must not have more rows or columns than the token map "
              "(use the torch path, MMTRANSNEXT_OPS=torch, for such inputs)");
  const int64_t P = pool_height * pool_width, nk = kernel_size * kernel_size;
  check_shape(op, "q_scaled", q_scaled, {B, heads, N, d});
  check_shape(op, "key", key, {B, heads, N, d});
  check_shape(op, "value", value, {B, heads, N, d});
  check_shape(op, "key_pool", key_pool, {B, heads, P, d});
  check_shape(op, "value_pool", value_pool, {B, heads, P, d});
  check_shape(op, "rpb", rpb, {heads, nk});
  TORCH_CHECK(pos_table.dim() == 3 && pos_table.size(1) >= 1, op,
              ": pos_table must be [heads, R, W*Wk] with R >= 1, got ", pos_table.sizes());
  const int64_t R = pos_table.size(1);
  check_shape(op, "pos_table", pos_table, {heads, R, width * pool_width});
  check_shape(op, "learnable_tokens", learnable_tokens, {heads, d, nk});
  check_shape(op, "learnable_bias", learnable_bias, {heads, nk});
  check_shape(op, "pos_rows", pos_rows, {height * pool_height});
  if (pos_rows.device().is_cpu()) {  // the values: where they are read
    const auto [lo, hi] = at::aminmax(pos_rows);
    TORCH_CHECK(lo.item<int64_t>() >= 0 && hi.item<int64_t>() < R, op,
                ": pos_rows holds values outside [0, R) = [0, ", R, ") (min ", lo.item<int64_t>(),
                ", max ", hi.item<int64_t>(), "): they index the rows of pos_table");
  }
  // detached: the kernel runs ATen matmuls on views of them (autograd is the op's own)
  const auto prep = [](const at::Tensor& t) { return t.detach().contiguous(); };
  return {prep(q),          prep(q_scaled),   prep(key),
          prep(value),      prep(key_pool),   prep(value_pool),
          prep(rpb),        prep(pos_table),  prep(learnable_tokens),
          prep(learnable_bias), prep(pos_rows)};
}

std::tuple<at::Tensor, at::Tensor> aggregated_attention_cpu_entry(
    const at::Tensor& q, const at::Tensor& q_scaled, const at::Tensor& key,
    const at::Tensor& value, const at::Tensor& key_pool, const at::Tensor& value_pool,
    const at::Tensor& rpb, const at::Tensor& pos_table, const at::Tensor& learnable_tokens,
    const at::Tensor& learnable_bias, const at::Tensor& pos_rows, int64_t height, int64_t width,
    int64_t kernel_size, int64_t pool_height, int64_t pool_width) {
  const auto in = checked_inputs(kOp, q, q_scaled, key, value, key_pool, value_pool, rpb,
                                 pos_table, learnable_tokens, learnable_bias, pos_rows, height,
                                 width, kernel_size, pool_height, pool_width);
  return aggregated_attention_cpu(in, height, width, kernel_size, pool_height, pool_width);
}

std::vector<at::Tensor> aggregated_attention_backward_cpu_entry(
    const at::Tensor& grad_out, const at::Tensor& lse, const at::Tensor& q,
    const at::Tensor& q_scaled, const at::Tensor& key, const at::Tensor& value,
    const at::Tensor& key_pool, const at::Tensor& value_pool, const at::Tensor& rpb,
    const at::Tensor& pos_table, const at::Tensor& learnable_tokens,
    const at::Tensor& learnable_bias, const at::Tensor& pos_rows, int64_t height, int64_t width,
    int64_t kernel_size, int64_t pool_height, int64_t pool_width) {
  const char* op = "aggregated_attention_backward";
  const auto in = checked_inputs(op, q, q_scaled, key, value, key_pool, value_pool, rpb,
                                 pos_table, learnable_tokens, learnable_bias, pos_rows, height,
                                 width, kernel_size, pool_height, pool_width);
  check_grad(op, "grad_out", grad_out, q.sizes(), q);
  const auto acc = at::toOpMathType(q.scalar_type());
  TORCH_CHECK(lse.sizes() == q.sizes().slice(0, 3) && lse.scalar_type() == acc, op,
              ": lse must be ", acc, " of shape ", q.sizes().slice(0, 3), ", got ",
              lse.scalar_type(), " ", lse.sizes());
  return aggregated_attention_backward_cpu(grad_out.detach().contiguous(), in,
                                           lse.detach().contiguous(), height, width,
                                           kernel_size, pool_height, pool_width);
}

}  // namespace
}  // namespace mmtransnext

TORCH_LIBRARY_IMPL(mmtransnext, CPU, m) {
  m.impl("aggregated_attention", &mmtransnext::aggregated_attention_cpu_entry);
  m.impl("aggregated_attention_backward", &mmtransnext::aggregated_attention_backward_cpu_entry);
}
