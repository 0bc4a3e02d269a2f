"""The tokenizer as OpenVINO operators (openvino-tokenizers), joined with the model so one
ov.Model takes strings.

openvino-tokenizers reproduces BERT's normalizer (accents, CJK, control characters,
special-token strings) better than onnxruntime-extensions, and takes a 1-D batch of
strings natively, padding on the right to the batch's longest row. What it needs:
- truncation: `convert_tokenizer` leaves it off by default; `truncation=True,
  max_length=...` turns it on, keeping [CLS] ... [SEP]. The converter stores the switch
  as a ReadValue/Assign state variable; it is folded to a constant here so the model
  stays stateless (any infer request, no state to reset).
- clean_text: transformers also removes private-use characters and U+FFFD, which the
  converter keeps as [UNK]: they are added to its control-character pattern.
- CJK: the converter isolates \\p{Han}, more than the blocks BERT isolates (CJK
  extension G and later, radicals, U+3005): its pattern is replaced by BERT's blocks.
- the string input gets the name STRING_INPUT.
What it cannot do: output offsets (OFFSETS["openvino"] is False), so a tagger that maps
tokens back to characters cannot be strings-in on OpenVINO. Words are limited to 100
UTF-8 bytes where transformers limits them to 100 characters (longer -> [UNK]). It case
folds where transformers lowercases: final sigma (ς) and micro sign (µ) differ.

`import openvino_tokenizers` registers its extension with every ov.Core made afterwards:
it must come before a strings-in model is read or compiled (see `core`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec.graph_tokenizer import (
    ENCODING_OUTPUTS,
    check_preprocessing,
    load_hf_tokenizer,
)
from edgec_runtime.iospec import STRING_INPUT

CONTROL_PATTERN = "([\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F\\p{Cf}])"
"""The converter's clean_text pattern (openvino-tokenizers 2026.4); Co and U+FFFD are added."""
CONTROL_PATTERN_FIXED = "([\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F\\p{Cf}\\p{Co}\\x{FFFD}])"
HAN_PATTERN = "([\\p{Han}])"
"""The converter's CJK pattern: \\p{Han} isolates more than BERT's CJK blocks (e.g. the
CJK extension G plane); HAN_PATTERN_FIXED lists the blocks transformers isolates."""
HAN_PATTERN_FIXED = (
    "([\\x{4E00}-\\x{9FFF}\\x{3400}-\\x{4DBF}\\x{20000}-\\x{2A6DF}\\x{2A700}-\\x{2B73F}"
    "\\x{2B740}-\\x{2B81F}\\x{2B820}-\\x{2CEAF}\\x{F900}-\\x{FAFF}\\x{2F800}-\\x{2FA1F}])"
)


def core():
    """The runtime's ov.Core, which can run the tokenizer operators."""
    from edgec_runtime.runners.openvino import core as runtime_core

    return runtime_core()


def tokenizer_model(tokenizer_dir: str | Path, preprocessing: dict):
    """The corrected tokenizer alone: input `text` (string [batch]); outputs input_ids,
    attention_mask, token_type_ids (int64 [batch, max_length]: every row padded to the
    same length, so the model behind it meets one shape)."""
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer

    max_length = check_preprocessing(preprocessing)
    hf = load_hf_tokenizer(tokenizer_dir)  # a fresh one: the converter sets model_max_length
    pad_id = preprocessing.get("pad_token_id", hf.pad_token_id)
    if pad_id != hf.pad_token_id:
        raise ValueError(f"pad id {pad_id} differs from the tokenizer's {hf.pad_token_id}")
    model = convert_tokenizer(
        hf,
        with_detokenizer=False,
        truncation=True,
        max_length=max_length,
        # one shape for every text: OpenVINO specialises its kernels per input shape, and
        # real lengths gave a p90 of 24.9 ms against 4.5 ms padded (sentiment int8, b1)
        use_max_padding=True,
        tokenizer_output_type=ov.Type.i64,
    )
    model = _stateless(model)
    _replace_string_constant(model, CONTROL_PATTERN, CONTROL_PATTERN_FIXED)
    _replace_string_constant(model, HAN_PATTERN, HAN_PATTERN_FIXED)
    model.input(0).get_tensor().set_names({STRING_INPUT})
    names = {o.get_any_name() for o in model.outputs}
    missing = [n for n in ENCODING_OUTPUTS if n not in names]
    if missing:
        raise RuntimeError(f"openvino-tokenizers gave no {missing} output")
    return model


def _stateless(model):
    """Fold the converter's `truncation` state variable into its initial constant."""
    import openvino as ov

    reads = [n for n in model.get_ordered_ops() if n.get_type_name() == "ReadValue"]
    if not reads:
        return model
    for read in reads:
        source = read.input_value(0)
        for target in list(read.output(0).get_target_inputs()):
            if target.get_node().get_type_name() != "Assign":
                target.replace_source_output(source)
    stateless = ov.Model(model.get_results(), model.get_parameters(), model.get_friendly_name())
    for key in ("max_length", "truncation", "pad_token_id", "openvino_tokenizers_version"):
        if model.has_rt_info(key):
            stateless.set_rt_info(model.get_rt_info(key), key)
    stateless.validate_nodes_and_infer_types()
    return stateless


def _replace_string_constant(model, old: str, new: str) -> None:
    import openvino as ov
    from openvino import opset15

    wanted = np.frombuffer(old.encode(), dtype=np.uint8)
    found = False
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Constant" or node.get_output_element_type(0) != ov.Type.u8:
            continue
        data = node.get_data()
        if data.ndim == 1 and data.size == wanted.size and np.array_equal(data, wanted):
            replacement = opset15.constant(np.frombuffer(new.encode(), dtype=np.uint8))
            for target in list(node.output(0).get_target_inputs()):
                target.replace_source_output(replacement.output(0))
            found = True
    if not found:
        raise RuntimeError(f"openvino-tokenizers no longer has the pattern {old}: update edgec")
    model.validate_nodes_and_infer_types()


def merge(tokenizer_model, ov_model, *, extra_outputs: tuple[str, ...] = ()):
    """One ov.Model: `text` -> the tokenizer -> `ov_model` (converted from the ONNX export,
    so its inputs are named input_ids / attention_mask / token_type_ids). Outputs are the
    model's, then `extra_outputs` (tokenizer outputs, e.g. attention_mask)."""
    import openvino as ov

    names = [i.get_any_name() for i in ov_model.inputs]
    produced = {o.get_any_name(): o for o in tokenizer_model.outputs}
    unknown = [n for n in names if n not in produced]
    if unknown:
        raise ValueError(f"the model takes {unknown}, which the tokenizer does not give")
    wrong = [n for n in extra_outputs if n not in produced]
    if wrong:
        raise ValueError(f"no tokenizer output named {wrong}")
    for name in names:
        port = ov_model.input(name)
        if port.get_element_type() != ov.Type.i64:
            raise ValueError(f"the model's input {name} is not i64")
        source = produced[name].get_node().input_value(0)  # the tokenizer Result's source
        for target in list(port.get_target_inputs()):
            target.replace_source_output(source)
    results = list(ov_model.get_results())
    for name in extra_outputs:
        result = ov.opset15.result(produced[name].get_node().input_value(0))
        result.output(0).get_tensor().set_names({name})
        results.append(result)
    merged = ov.Model(results, tokenizer_model.get_parameters(), "strings_in")
    merged.validate_nodes_and_infer_types()
    return merged


def compile(model, threads: int = 2):
    """Compile for CPU with the project's latency settings (facts.md, OpenVINO)."""
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }
    return core().compile_model(model, "CPU", config)


def encoder(tokenizer_model, threads: int = 1):
    """encode(text) -> {output name: array for that one text}, for check.compare."""
    compiled = compile(tokenizer_model, threads)
    names = [o.get_any_name() for o in compiled.outputs]
    request = compiled.create_infer_request()

    def encode(text: str) -> dict[str, np.ndarray]:
        values = request.infer({STRING_INPUT: np.array([text])})
        return {name: values[i][0] for i, name in enumerate(names)}

    return encode
