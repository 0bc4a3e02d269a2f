"""A STAND-IN for the `tensorrt` module. It is NOT TensorRT and runs nothing.

TensorRT cannot be installed on the development machines (its wheels come from
NVIDIA's own index), so the backend's build logic is tested against this fake: a
module object with the TensorRT 10/11 Python API surface edgec uses, which records
every call (networks, parsed files, profiles, flags, pool limits, layer precisions,
timing caches, serializations) for the tests to inspect.

Its "parser" reads the real ONNX file with `onnx` and turns each node into a fake
layer (LayerNormalization -> NORMALIZATION, Softmax -> SOFTMAX, ...), with output
types from ONNX shape inference, so precision pinning sees a realistic network.
Its "engine" is a few bytes of JSON. Real behaviour is covered only by the
`@pytest.mark.gpu` test on a machine with TensorRT and CUDA.

    standin = make_tensorrt_standin("10.9.0.34")
    monkeypatch.setitem(sys.modules, "tensorrt", standin)
    ...; standin.calls  # what edgec did

Its names and signatures follow TensorRT's Python API as tensorrt-stubs declares it,
which mypy checks edgec's calls against (`make check`); the stand-in only has to
behave like it.
"""

from __future__ import annotations

import enum
import importlib.machinery
import json
import types
from dataclasses import dataclass, field


class DataType(enum.Enum):
    FLOAT = "float32"
    HALF = "float16"
    INT8 = "int8"
    INT32 = "int32"
    INT64 = "int64"
    BOOL = "bool"


ONNX_TYPES = {
    1: DataType.FLOAT,
    10: DataType.HALF,
    3: DataType.INT8,
    6: DataType.INT32,
    7: DataType.INT64,
    9: DataType.BOOL,
}


class LayerType(enum.Enum):
    NORMALIZATION = "normalization"
    SOFTMAX = "softmax"
    MATRIX_MULTIPLY = "matrix_multiply"
    QUANTIZE = "quantize"
    DEQUANTIZE = "dequantize"
    SHAPE = "shape"
    CONSTANT = "constant"
    GATHER = "gather"
    CAST = "cast"
    ELEMENTWISE = "elementwise"


ONNX_LAYERS = {
    "LayerNormalization": LayerType.NORMALIZATION,
    "Softmax": LayerType.SOFTMAX,
    "MatMul": LayerType.MATRIX_MULTIPLY,
    "Gemm": LayerType.MATRIX_MULTIPLY,
    "QuantizeLinear": LayerType.QUANTIZE,
    "DequantizeLinear": LayerType.DEQUANTIZE,
    "Shape": LayerType.SHAPE,
    "Constant": LayerType.CONSTANT,
    "Gather": LayerType.GATHER,
    "Cast": LayerType.CAST,
}


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 5


class MemoryPoolType(enum.Enum):
    WORKSPACE = "workspace"


class TensorIOMode(enum.Enum):
    INPUT = "input"
    OUTPUT = "output"


class Dims(tuple):
    """tensorrt.Dims: a shape, built from a list."""


@dataclass
class Calls:
    """Everything edgec asked of the stand-in, in order of asking."""

    network_flags: list = field(default_factory=list)
    parsed_files: list = field(default_factory=list)
    configs: list = field(default_factory=list)
    profiles: list = field(default_factory=list)
    built: list = field(default_factory=list)
    calibrators: list = field(default_factory=list)


@dataclass
class Tensor:
    name: str
    shape: tuple
    dtype: DataType


class Layer:
    def __init__(self, name: str, type_: LayerType, outputs: list[Tensor]):
        self.name, self.type, self._outputs = name, type_, outputs
        self.precision_set = None
        self.output_types: dict[int, DataType] = {}

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_output(self, i: int) -> Tensor:
        return self._outputs[i]

    @property
    def precision(self):
        return self.precision_set

    @precision.setter
    def precision(self, value):
        self.precision_set = value

    def set_output_type(self, i: int, dtype: DataType) -> None:
        self.output_types[i] = dtype


class Network:
    def __init__(self, flags: int):
        self.flags = flags
        self.inputs: list[Tensor] = []
        self.layers: list[Layer] = []

    num_inputs = property(lambda self: len(self.inputs))
    num_layers = property(lambda self: len(self.layers))

    def get_input(self, i: int) -> Tensor:
        return self.inputs[i]

    def get_layer(self, i: int) -> Layer:
        return self.layers[i]


class ParserError:
    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text


class Profile:
    def __init__(self, calls: Calls):
        self.shapes: dict[str, tuple] = {}
        calls.profiles.append(self)

    def set_shape(self, name, min, opt, max):  # noqa: A002 - TensorRT's own keyword names
        self.shapes[name] = (tuple(min), tuple(opt), tuple(max))


class TimingCache:
    def __init__(self, blob: bytes):
        self.loaded_from = bytes(blob)

    def serialize(self) -> bytes:
        return b"STANDIN-TIMING-CACHE:" + self.loaded_from


def make_tensorrt_standin(version: str = "10.9.0.34", parse_errors: list[str] | None = None):
    """A fresh stand-in module; `version` "11.x" drops the weak-typing API as 11 did."""
    major = int(version.split(".")[0])
    calls = Calls()
    module = types.ModuleType(
        "tensorrt", "STAND-IN for tensorrt (not TensorRT): records calls for tests"
    )
    # An origin: probe treats a tensorrt without one as the stubs' empty namespace package.
    module.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None, origin=__file__)
    module.__version__ = version
    module.calls = calls
    module.IS_STANDIN = True

    flags = ["TF32", "REFIT"]
    if major < 11:
        flags += ["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"]
    module.BuilderFlag = enum.Enum("BuilderFlag", flags)

    class Logger:
        WARNING, ERROR, INFO, VERBOSE = "warning", "error", "info", "verbose"

        def __init__(self, severity="warning"):
            self.severity = severity

    class Config:
        def __init__(self):
            self.flags = {module.BuilderFlag.TF32}  # on by default, as in TensorRT
            self.pool_limits: dict = {}
            self.profiles: list = []
            self.timing_cache = None
            calls.configs.append(self)

        def set_flag(self, flag):
            self.flags.add(flag)

        def clear_flag(self, flag):
            self.flags.discard(flag)

        def get_flag(self, flag) -> bool:
            return flag in self.flags

        def set_memory_pool_limit(self, pool, size):
            self.pool_limits[pool] = size

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, blob):
            return TimingCache(blob)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

        def __setattr__(self, name, value):
            if name == "int8_calibrator":
                calls.calibrators.append(value)
            object.__setattr__(self, name, value)

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags: int = 0):
            calls.network_flags.append(flags)
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile(calls)

        def build_serialized_network(self, network, config):
            engine = json.dumps({"standin_engine": True, "layers": network.num_layers}).encode()
            calls.built.append({"network": network, "config": config, "engine": engine})
            return engine

    class OnnxParser:
        def __init__(self, network, logger):
            self.network = network
            self.errors = [ParserError(e) for e in parse_errors or []]

        num_errors = property(lambda self: len(self.errors))

        def get_error(self, i):
            return self.errors[i]

        def parse_from_file(self, path) -> bool:
            import onnx

            model = onnx.load(str(path))
            calls.parsed_files.append({"path": str(path), "model": model})
            if self.errors:
                return False
            _populate(self.network, model)
            return True

    class Runtime:
        def __init__(self, logger):
            raise RuntimeError("the TensorRT stand-in cannot deserialize or run engines")

    module.Logger, module.Builder, module.OnnxParser, module.Runtime = (
        Logger,
        Builder,
        OnnxParser,
        Runtime,
    )
    module.NetworkDefinitionCreationFlag = NetworkDefinitionCreationFlag
    module.MemoryPoolType, module.LayerType, module.TensorIOMode = (
        MemoryPoolType,
        LayerType,
        TensorIOMode,
    )
    module.DataType, module.Dims = DataType, Dims
    module.float32, module.float16, module.int8 = DataType.FLOAT, DataType.HALF, DataType.INT8
    module.int32, module.int64, module.bool = DataType.INT32, DataType.INT64, DataType.BOOL
    return module


def _populate(network: Network, model) -> None:
    """One fake layer per ONNX node, outputs typed by ONNX shape inference."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types_ = {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]
    }
    initializers = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name not in initializers:
            dtype = ONNX_TYPES.get(value.type.tensor_type.elem_type, DataType.FLOAT)
            network.inputs.append(Tensor(value.name, (-1, -1), dtype))
    for i, node in enumerate(model.graph.node):
        outputs = [
            Tensor(o, (), ONNX_TYPES.get(types_.get(o, 1), DataType.FLOAT)) for o in node.output
        ]
        kind = ONNX_LAYERS.get(node.op_type, LayerType.ELEMENTWISE)
        network.layers.append(Layer(node.name or f"{node.op_type}_{i}", kind, outputs))
