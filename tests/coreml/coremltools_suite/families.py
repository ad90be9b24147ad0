"""Which of coremltools' TF/Keras frontend tests concern image models, grouped into op families.

Keys are test classes of the three modules the suite runs (``MODULES``); a test function named in
``BY_FUNCTION`` overrides its class's family. Classes not listed (NMS, RNNs, FFT, control flow,
string and random ops, 3-D convolution...) are out of scope: no image classifier emits them.
"""

from __future__ import annotations

MODULES = (
    "coremltools.converters.mil.frontend.tensorflow.test.test_ops",
    "coremltools.converters.mil.frontend.tensorflow2.test.test_v2_ops",
    "coremltools.converters.mil.frontend.tensorflow2.test.test_v2_ops_tf_keras",
)

BACKENDS = {"neuralnetwork": "('neuralnetwork', 'fp32')", "mlprogram": "('mlprogram', 'fp16')"}

FAMILIES: dict[str, tuple[str, ...]] = {
    "conv": ("TestConvolution", "TestConv", "TestDepthwiseConv", "TestSeparableConv"),
    "conv-transpose": ("TestConvTranspose",),
    "pool": ("TestPool1d", "TestPool2d", "TestPooling", "TestGlobalPooling"),
    "pad/crop": ("TestPad", "TestPadV2", "TestPadding", "TestCropping"),
    "activation": ("TestActivation", "TestActivationSiLU", "TestGelu", "TestClipByValue"),
    "normalization": ("TestBatchNormalization", "TestNormalization", "TestNormalizationTF2",
                      "TestInstanceNormalization", "TestL2Normalization", "TestLocalResponseNormalization"),
    "reshape": ("TestReshape", "TestFlatten", "TestPermute", "TestTranspose", "TestSqueeze",
                "TestExpandDims", "TestDepthToSpace", "TestSpaceToDepth", "TestShape", "TestIdentity"),
    "concat": ("TestConcat", "TestConcatenate", "TestPack", "TestStack", "TestAddN", "TestSplit"),
    "resize": ("TestImageResizing", "TestResizeNearestNeighbor", "TestUpSampling"),
    "reduce": ("TestReduction",),
    "matmul": ("TestDense", "TestLinear"),
    "elementwise": ("TestElementWiseBinary", "TestElementWiseUnary", "TestBinary", "TestElementWiseBinaryTF2",
                    "TestCast"),
    "softmax": ("TestLogSoftMax",),
    "slice": ("TestSliceByIndex", "TestSliceBySize"),
}

# test functions whose op family differs from their class's
BY_FUNCTION = {"test_softmax": "softmax"}

_CLASS_FAMILY = {cls: fam for fam, classes in FAMILIES.items() for cls in classes}


def family_of(stable_id: str) -> str | None:
    """The family of ``module::Class::test[params]``, or None when out of scope."""
    parts = stable_id.split("::")
    if len(parts) < 3:
        return None
    func = parts[2].split("[", 1)[0]
    fam = _CLASS_FAMILY.get(parts[1])
    if fam is None:
        return None
    return BY_FUNCTION.get(func, fam)


def backend_of(stable_id: str) -> str | None:
    for name, marker in BACKENDS.items():
        if f"backend={marker}" in stable_id:
            return name
    return None
