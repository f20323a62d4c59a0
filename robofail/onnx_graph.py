"""Small ONNX graphs built straight from numpy weights (training side; needs ``onnx``).

The monitor's score models and the recovery policy are a few matrix products, so their graphs are
written out op by op with ``onnx.helper`` rather than traced from torch: the graph holds exactly
the model's math, with no exporter in between, and loads in any onnxruntime that reads opset 17.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

OPSET = 17


class GraphBuilder:
    """Builds a graph whose first float32 input is ``input_name`` (N, dim), or (N, *dim) for a
    tuple ``dim``; :meth:`add_input` adds more. Every method returns the name of the value it adds.
    """

    def __init__(self, input_name: str, dim: int | tuple[int, ...]) -> None:
        from onnx import TensorProto, helper

        self._helper = helper
        self._tensor = TensorProto
        self.input = input_name
        self.nodes: list = []
        self.initializers: list = []
        dims = list(dim) if isinstance(dim, tuple) else [dim]
        self.inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", *dims])]
        self._count = 0

    def add_input(self, name: str, dim: int) -> str:
        """Another float32 input (N, dim)."""
        self.inputs.append(
            self._helper.make_tensor_value_info(name, self._tensor.FLOAT, ["N", dim])
        )
        return name

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, array: np.ndarray, stem: str = "c") -> str:
        """A float32 (or int64 for integer arrays) initializer."""
        from onnx import numpy_helper

        array = np.asarray(array)
        array = array.astype(np.int64 if array.dtype.kind in "iu" else np.float32)
        name = self._name(stem)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, **attributes) -> str:
        """One node with one output."""
        out = self._name(op_type.lower())
        self.nodes.append(self._helper.make_node(op_type, list(inputs), [out], **attributes))
        return out

    def affine(self, x: str, weight: np.ndarray, bias: np.ndarray | None = None) -> str:
        """x @ weight (+ bias); weight (in, out)."""
        y = self.op("MatMul", x, self.const(weight, "w"))
        return y if bias is None else self.op("Add", y, self.const(bias, "b"))

    def mlp(self, x: str, layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> str:
        """Affine layers with ReLU between them (none after the last)."""
        for i, (weight, bias) in enumerate(layers):
            x = self.affine(x, weight, bias)
            if i < len(layers) - 1:
                x = self.op("Relu", x)
        return x

    def standardise(self, x: str, mean: np.ndarray, std: np.ndarray) -> str:
        """(x - mean) / std."""
        return self.op("Div", self.op("Sub", x, self.const(mean, "mean")), self.const(std, "std"))

    def row_sum_squares(self, x: str) -> str:
        """(N, K) -> (N,) sum of squares per row."""
        return self.op("ReduceSumSquare", x, axes=[1], keepdims=0)

    def model(
        self,
        output: str,
        output_name: str,
        metadata: dict[str, str],
        output_shape: tuple = ("N",),
        graph_name: str = "robofail_score",
    ):
        """The finished, checked ``onnx.ModelProto`` whose output ``output_name`` (of shape
        ``output_shape``) is ``output``."""
        import onnx

        self.nodes.append(self._helper.make_node("Identity", [output], [output_name]))
        graph = self._helper.make_graph(
            self.nodes,
            graph_name,
            self.inputs,
            [
                self._helper.make_tensor_value_info(
                    output_name, self._tensor.FLOAT, list(output_shape)
                )
            ],
            initializer=self.initializers,
        )
        model = self._helper.make_model(
            graph,
            opset_imports=[self._helper.make_opsetid("", OPSET)],
            producer_name="robofail",
        )
        model.ir_version = 8  # readable by onnxruntime >= 1.10
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, str(value)
        onnx.checker.check_model(model, full_check=True)
        return model
