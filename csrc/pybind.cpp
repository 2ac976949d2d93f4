// mmtransnext._ext: the one compiled module (laid out like mmcv._ext).
//
// Importing it registers the torch.ops.mmtransnext operators (schemas here, kernels in
// sliding_window.cpp and aggregated_attention.cpp). Their fake (meta) kernels and autograd
// formulas are registered in Python, in mmtransnext/ops/ext_registration.py, which torch imports on demand
// (set_python_module, torch >= 2.4) and mmtransnext.ops.ext_loader imports right after this
// module.
#include <torch/extension.h>
#include <torch/library.h>

#include "common/torch_version.h"

namespace {

bool with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace

TORCH_LIBRARY(mmtransnext, m) {
#if MMTN_TORCH_AT_LEAST(2, 4)
  m.set_python_module("mmtransnext.ops.ext_registration");
#endif
  // attn[b,h,p,j] = q[b,h,p] . k[b,h,p+o_j] + rpb[h,j]; -inf where p+o_j is outside.
  m.def("sliding_qk(Tensor q, Tensor k, Tensor rpb, int height, int width, int kernel_size)"
        " -> Tensor");
  // (grad_q, grad_k, grad_rpb); grad_attn at outside positions is ignored.
  m.def("sliding_qk_backward(Tensor grad_attn, Tensor q, Tensor k, int height, int width, "
        "int kernel_size) -> (Tensor, Tensor, Tensor)");
  // out[b,h,p] = sum_j attn[b,h,p,j] * v[b,h,p+o_j]; v is zero outside the image.
  m.def("sliding_av(Tensor attn, Tensor v, int height, int width, int kernel_size) -> Tensor");
  // (grad_attn, grad_v); grad_attn is zero at outside positions.
  m.def("sliding_av_backward(Tensor grad_out, Tensor attn, Tensor v, int height, int width, "
        "int kernel_size) -> (Tensor, Tensor)");
  // Fused aggregated attention (aggregated_attention.h): (out, lse); CPU kernel only.
  m.def("aggregated_attention(Tensor q, Tensor q_scaled, Tensor key, Tensor value, "
        "Tensor key_pool, Tensor value_pool, Tensor rpb, Tensor pos_table, "
        "Tensor learnable_tokens, Tensor learnable_bias, Tensor pos_rows, int height, "
        "int width, int kernel_size, int pool_height, int pool_width) -> (Tensor, Tensor)");
  // Gradients of the ten floating-point inputs, in order; recomputes the probabilities
  // from lse.
  m.def("aggregated_attention_backward(Tensor grad_out, Tensor lse, Tensor q, Tensor q_scaled, "
        "Tensor key, Tensor value, Tensor key_pool, Tensor value_pool, Tensor rpb, "
        "Tensor pos_table, Tensor learnable_tokens, Tensor learnable_bias, Tensor pos_rows, "
        "int height, int width, int kernel_size, int pool_height, int pool_width) -> Tensor[]");
  // Fused log-CPB MLP (cpb_mlp.h): out[u, v, j] = bias[j] + weight[j] . relu(rows[u] + cols[v]).
  m.def("cpb_mlp(Tensor rows, Tensor cols, Tensor weight, Tensor bias) -> Tensor");
  // (grad_rows, grad_cols, grad_weight, grad_bias); recomputes the hidden activations.
  m.def("cpb_mlp_backward(Tensor grad_out, Tensor rows, Tensor cols, Tensor weight) "
        "-> (Tensor, Tensor, Tensor, Tensor)");
  // ConvGLU's gate (conv_glu_gate.h): GELU(depthwise 3x3 conv of gate) * value on the rows
  // [row_begin, row_end) of a height x width token map, channels last.
  m.def("conv_glu_gate(Tensor gate, Tensor value, Tensor weight, Tensor bias, int height, "
        "int width, int row_begin, int row_end) -> Tensor");
  // (grad_gate, grad_value, grad_weight, grad_bias) of the whole map; recomputes the conv.
  m.def("conv_glu_gate_backward(Tensor grad_out, Tensor gate, Tensor value, Tensor weight, "
        "Tensor bias, int height, int width) -> (Tensor, Tensor, Tensor, Tensor)");
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mmtransnext compiled ops (sliding-window attention), see torch.ops.mmtransnext";
  m.def("with_cuda", &with_cuda, "Whether the CUDA kernels were compiled into this module.");
}
