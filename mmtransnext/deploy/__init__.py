"""ONNX export of TransNeXt models (tools/deployment/pytorch2onnx.py): what is exported
(task_graph), the export and its checks (onnx_export), onnxruntime parity and latency
(ort_check). Needs the ``deploy`` extra (onnx, onnxruntime)."""
