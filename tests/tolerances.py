"""One tolerance table for every numeric comparison in the tests (max absolute difference)."""

ATOL = {
    "float32": 1e-5,  # fp32 backend vs the reference, vs the numpy oracle, vs another backend
    "cache": 1e-5,  # cached decoding vs the full pass
    "onnx": 1e-4,  # ONNX Runtime running an exported graph vs PyTorch (the bound optimum checks BERT exports at)
    "bfloat16": 5e-2,
    "float16": 1e-2,
}
