"""An edgec backend that runs models with ONNX's reference evaluator.

It shows the whole plugin contract in two small modules, one per distribution it
plugs into:

- `backend` plugs into the compiler (entry-point group `edgec`): it describes the
  backend as data (precisions, devices, options) and implements `compile`, which
  files go into the package.
- `runner` plugs into edgec-runtime (entry-point group `edgec_runtime`): `load` makes
  a runner mapping numpy inputs to the graph's output. A device with only
  edgec-runtime installed imports this module alone, never the compiler.

The build verifies a package with the runtime's runner, so both halves run the same
code. Heavy imports stay inside the functions.
"""
