"""The tokenizer as ONNX Runtime graph operators (onnxruntime-extensions), and merging it
with the model so one ONNX file takes strings.

What the converter gets wrong, and what this module does about it:
- `gen_processing_models` sets the BertTokenizer op's strip_accents to 0 when the
  tokenizer config says None, which transformers reads as "same as lowercase": the op's
  attributes are set here from tokenizer.json's normalizer instead.
- It sets no max_length: the op's own `max_length` attribute truncates to max_length - 2
  word pieces and then adds [CLS] ... [SEP], as transformers does (but gives [SEP] the
  offsets of the first cut piece: they are set to (0, 0) here).
- The op takes one string (two are read as a pair): a Loop runs it once per row, pads
  every row to max_length and slices the batch back to its longest row, so the graph
  takes a 1-D batch and gives what transformers gives with padding="longest".
- transformers' clean_text drops control, format and private-use characters and U+FFFD;
  the op keeps some of them (U+2060, U+FFFD, ...) and maps them to [UNK]: a
  StringRegexReplace removes them first (CLEAN_PATTERN), and a second one turns the
  whitespace the op does not know (U+1680, U+2028, U+2029) into spaces.
What it cannot correct (check.compare reports it): a NUL byte ends the string at the
ORT input boundary; special-token strings in the text ("[SEP]") are split as words; the
word pieces matched before an unknown character are kept ("ab😀cd" gives ab [UNK] where
transformers gives [UNK]); some Unicode lowercasing/decomposition (U+212B, İ, final
sigma, combining marks of Indic scripts). Offsets are byte positions in the op's own
" ".join(words) (stripped, whitespace collapsed, punctuation spaced apart, [UNK] one
long), so they equal transformers' only where that keeps every character in place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec.graph_tokenizer import (
    ENCODING_OUTPUTS,
    OFFSETS_OUTPUT,
    bert_spec,
    check_preprocessing,
    load_hf_tokenizer,
)
from edgec_runtime.iospec import STRING_INPUT

CONTRIB = "ai.onnx.contrib"
MIN_OPSET = 13  # Squeeze takes its axes as an input from 13 on; the graph relies on it
DEFAULT_OPSET = 17
DEFAULT_IR_VERSION = 8
CLEAN_PATTERN = "[\\x01-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F\\p{Cf}\\p{Co}\\x{FFFD}]"
"""What transformers' clean_text removes, as RE2: control characters but tab, newline and
carriage return (NUL never gets this far), format (Cf) and private-use (Co), U+FFFD."""
SPACE_PATTERN = "[\\x{1680}\\x{2028}\\x{2029}]"
"""Whitespace to transformers (Rust's char::is_whitespace) that the op reads as a letter."""
_P = "tokenizer/"  # every internal name, so merging never collides with the model's names


def tokenizer_graph(tokenizer_dir: str | Path, preprocessing: dict, *, opset: int = DEFAULT_OPSET):
    """The corrected tokenizer alone: input `text` (string [batch]); outputs input_ids,
    attention_mask, token_type_ids (int64 [batch, sequence]) and offset_mapping (int64
    [batch, sequence, 2]). The batch must hold at least one text."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper
    from onnxruntime_extensions import gen_processing_models

    max_length = check_preprocessing(preprocessing)
    spec = bert_spec(tokenizer_dir)
    if spec.pop("max_input_chars_per_word") != 100:
        raise ValueError("the BertTokenizer op splits words of 100 characters at most only")
    hf = load_hf_tokenizer(tokenizer_dir)
    specials = {
        name: getattr(hf, name)
        for name in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
        if getattr(hf, name, None)
    }
    pre, _ = gen_processing_models(hf, pre_kwargs={**spec, **specials, "max_length": max_length})
    if [n.op_type for n in pre.graph.node] != ["BertTokenizer"]:
        raise RuntimeError("onnxruntime-extensions gave no single BertTokenizer node")
    pad_id = int(preprocessing.get("pad_token_id", hf.pad_token_id))
    node = helper.make_node
    stacked = [_P + "all_" + n for n in (*ENCODING_OUTPUTS, "offsets", "lens")]
    nodes = [
        node(
            "StringRegexReplace",
            [STRING_INPUT, _P + "pattern", _P + "empty"],
            [_P + "cleaner"],
            domain=CONTRIB,
        ),
        node(
            "StringRegexReplace",
            [_P + "cleaner", _P + "spaces", _P + "space"],
            [_P + "clean"],
            domain=CONTRIB,
        ),
        node("Shape", [STRING_INPUT], [_P + "n"]),
        node("Squeeze", [_P + "n", _P + "zero"], [_P + "trips"]),
        node("Loop", [_P + "trips", _P + "true"], stacked, body=_row_body(pre.graph.node[0])),
        # the batch's longest row (no axes: ReduceMax moved them to an input in opset 18)
        node("ReduceMax", [stacked[-1]], [_P + "longest_2d"], keepdims=1),
        node("Reshape", [_P + "longest_2d", _P + "one"], [_P + "longest"]),
    ]
    for src, name in zip(stacked[:4], (*ENCODING_OUTPUTS, OFFSETS_OUTPUT), strict=True):
        nodes.append(node("Slice", [src, _P + "zero", _P + "longest", _P + "one"], [name]))
    ints = {"one": [1], "zero": [0], "zero2": [0, 0], "minus_one": [-1], "max_len": [max_length]}
    scalars = {"pad_input_ids": pad_id, "pad_attention_mask": 0, "pad_token_type_ids": 0}
    inits = [helper.make_tensor(_P + k, T.INT64, [len(v)], v) for k, v in ints.items()]
    inits += [helper.make_tensor(_P + k, T.INT64, [], [v]) for k, v in scalars.items()]
    inits += [
        helper.make_tensor(_P + "true", T.BOOL, [], [True]),
        helper.make_tensor(_P + "no_span", T.INT64, [1, 2], [0, 0]),
        helper.make_tensor(_P + "pattern", T.STRING, [1], [CLEAN_PATTERN.encode()]),
        helper.make_tensor(_P + "empty", T.STRING, [1], [b""]),
        helper.make_tensor(_P + "spaces", T.STRING, [1], [SPACE_PATTERN.encode()]),
        helper.make_tensor(_P + "space", T.STRING, [1], [b" "]),
    ]
    outputs = [
        helper.make_tensor_value_info(n, T.INT64, ["batch", "sequence"]) for n in ENCODING_OUTPUTS
    ]
    outputs.append(helper.make_tensor_value_info(OFFSETS_OUTPUT, T.INT64, ["batch", "sequence", 2]))
    text = helper.make_tensor_value_info(STRING_INPUT, T.STRING, ["batch"])
    model = helper.make_model(
        helper.make_graph(nodes, "tokenizer", [text], outputs, initializer=inits),
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(CONTRIB, 1)],
        ir_version=DEFAULT_IR_VERSION,
        producer_name="edgec.graph_tokenizer",
    )
    onnx.checker.check_model(model)
    return model


def _row_body(bert_node):
    """The Loop body: row i -> its encoding padded to max_length (scan outputs must agree
    in shape across iterations), and its true length. Outer-scope names are read as is."""
    from onnx import TensorProto as T
    from onnx import helper

    node = helper.make_node
    row = {n: _P + "row_" + n for n in (*ENCODING_OUTPUTS, "offsets")}
    tokenize = node(
        "BertTokenizer",
        [_P + "row_text"],  # the op's output order: ids, token types, mask, offsets
        [row["input_ids"], row["token_type_ids"], row["attention_mask"], _P + "raw_offsets"],
        name=_P + "BertTokenizer",
        domain=CONTRIB,
    )
    tokenize.attribute.extend(bert_node.attribute)
    nodes = [
        node("Reshape", ["i", _P + "one"], [_P + "idx"]),
        node("Gather", [_P + "clean", _P + "idx"], [_P + "row_text"], axis=0),
        tokenize,
        # after truncating, the op gives [SEP] the cut token's offsets: (0, 0) it is
        node(
            "Slice",
            [_P + "raw_offsets", _P + "zero", _P + "minus_one", _P + "zero"],
            [_P + "offsets_but_sep"],
        ),
        node("Concat", [_P + "offsets_but_sep", _P + "no_span"], [row["offsets"]], axis=0),
        node("Shape", [row["input_ids"]], [_P + "row_len"]),
        node("Sub", [_P + "max_len", _P + "row_len"], [_P + "pad_n"]),
        node("Concat", [_P + "zero", _P + "pad_n"], [_P + "pads1"], axis=0),
        node("Concat", [_P + "zero2", _P + "pad_n", _P + "zero"], [_P + "pads2"], axis=0),
        node("Identity", ["cond_in"], ["cond_out"]),
    ]
    scans = [_P + "padded_" + n for n in (*ENCODING_OUTPUTS, "offsets")] + [_P + "row_len"]
    for name in ENCODING_OUTPUTS:
        pads = [row[name], _P + "pads1", _P + "pad_" + name]
        nodes.append(node("Pad", pads, [_P + "padded_" + name]))
    pads = [row["offsets"], _P + "pads2", _P + "pad_attention_mask"]
    nodes.append(node("Pad", pads, [_P + "padded_offsets"]))
    return helper.make_graph(
        nodes,
        _P + "row",
        [
            helper.make_tensor_value_info("i", T.INT64, []),
            helper.make_tensor_value_info("cond_in", T.BOOL, []),
        ],
        [helper.make_tensor_value_info("cond_out", T.BOOL, [])]
        + [helper.make_tensor_value_info(s, T.INT64, None) for s in scans],
    )


def merge(
    tokenizer_graph,
    model_path: str | Path,
    out_path: str | Path,
    *,
    extra_outputs: tuple[str, ...] = (),
) -> Path:
    """Write one strings-in model: `text` -> the tokenizer -> the model at `model_path`.

    Its outputs are the model's, then `extra_outputs` (any of ENCODING_OUTPUTS and
    OFFSETS_OUTPUT: a tagger needs attention_mask and offset_mapping). The tokenizer is
    re-stamped with the model's opset and IR version, which merge_models requires."""
    import onnx
    from onnx import TensorProto

    model = onnx.load(str(model_path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset < MIN_OPSET:
        raise ValueError(f"the model's opset {opset} is below {MIN_OPSET}, which the graph needs")
    inputs = [i.name for i in model.graph.input]
    unknown = [n for n in inputs if n not in ENCODING_OUTPUTS]
    if unknown:
        raise ValueError(f"the model takes {unknown}, which the tokenizer does not give")
    for i in model.graph.input:
        if i.type.tensor_type.elem_type != TensorProto.INT64:
            raise ValueError(f"the model's input {i.name} is not int64")
    wrong = [n for n in extra_outputs if n not in (*ENCODING_OUTPUTS, OFFSETS_OUTPUT)]
    if wrong:
        raise ValueError(f"no tokenizer output named {wrong}")
    tok = onnx.ModelProto()
    tok.CopyFrom(tokenizer_graph)
    tok.ir_version = model.ir_version
    for entry in tok.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = opset
    merged = onnx.compose.merge_models(tok, model, io_map=[(n, n) for n in inputs])
    # merge_models drops the tokenizer outputs the model consumes: declare them again
    by_name = {o.name: o for o in (*tok.graph.output, *merged.graph.output)}
    outputs = [by_name[n] for n in [o.name for o in model.graph.output] + list(extra_outputs)]
    del merged.graph.output[:]
    merged.graph.output.extend(outputs)
    merged.producer_name = model.producer_name or "edgec"
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(merged)
    onnx.save(merged, str(out))
    return out


def session(path, threads: int = 2):
    """An ORT session that can run the tokenizer ops (the runtime's, with
    onnxruntime-extensions registered). `path` is a file or a ModelProto."""
    from edgec_runtime.runners.onnxruntime import session as runtime_session

    model = path.SerializeToString() if hasattr(path, "SerializeToString") else path
    return runtime_session(model, threads=threads, custom_ops=True)


def encoder(tokenizer_graph, threads: int = 1):
    """encode(text) -> {output name: array for that one text}, for check.compare."""
    sess = session(tokenizer_graph, threads)
    names = [o.name for o in sess.get_outputs()]

    def encode(text: str) -> dict[str, np.ndarray]:
        values = sess.run(None, {STRING_INPUT: np.array([text], dtype=object)})
        return {name: value[0] for name, value in zip(names, values, strict=True)}

    return encode
