"""The quantizable node groups of an encoder graph, found by the graph's structure.

int8 does not hurt every MatMul alike: on the sentiment teacher the feed-forward
down-projections (their input is GELU's output, with outlier channels) cost most of
static int8's accuracy, and the rest almost nothing (benchmarks/NOTES.md, section 10).
A sensitivity search (edgec.int8_search) therefore scores, and keeps in float, groups
of nodes with one role in one layer, and `-O keep_float=[...]` names them by hand.

Groups are found from shapes and order alone, never from node names, so they hold for
any exporter and for ONNX Runtime's fused graph:
- the hidden size is the commonest dimension of the MatMul weights, the intermediate
  size the commonest other dimension of a weight that has the hidden size;
- a layer ends at its feed-forward down-projection ([intermediate, hidden]);
- in a layer, square weights are the attention projections; the last of them is the
  attention output, the others query, key and value; a MatMul of two activations is
  the attention core (scores and context); a fused Attention node is the whole block;
- whatever follows the last layer (pooler, classifier, tagging head) is the head.
"""

from __future__ import annotations

from collections import Counter

from edgec_runtime.errors import BadInput

QUANTIZABLE_OPS = ("MatMul", "Gemm", "Attention")
# One role per kind of node; a group is "layer<N>.<role>" or "head".
ROLES = ("attention", "qkv", "attention-core", "attention-out", "ffn-up", "ffn-down", "other")
HEAD = "head"


def _weights(model) -> dict[str, list[int]]:
    return {i.name: list(i.dims) for i in model.graph.initializer if len(i.dims) == 2}


def _weight_of(node, weights: dict) -> list[int] | None:
    """[in, out] of the node's 2-D weight, or None for a MatMul of two activations."""
    for name in node.input:
        dims = weights.get(name)
        if dims is None:
            continue
        transposed = node.op_type == "Gemm" and any(
            a.name == "transB" and a.i == 1 for a in node.attribute
        )
        return list(reversed(dims)) if transposed else dims
    return None


def geometry(model) -> tuple[int | None, int | None]:
    """(hidden, intermediate) read from the weights' shapes; None where none is clear."""
    weights = _weights(model)
    found = (_weight_of(n, weights) for n in model.graph.node if n.op_type in QUANTIZABLE_OPS)
    shapes = [w for w in found if w]
    dims = Counter(d for w in shapes for d in w)
    if not dims:
        return None, None
    hidden = dims.most_common(1)[0][0]
    others = Counter(d for w in shapes if hidden in w for d in w if d != hidden)
    # QKV fused into one [hidden, 3 * hidden] weight is not the feed-forward size
    others.pop(3 * hidden, None)
    return hidden, (others.most_common(1)[0][0] if others else None)


def quantizable_groups(model, op_types=QUANTIZABLE_OPS) -> dict[str, list[str]]:
    """Group name -> node names, in graph order, for the nodes of `op_types`."""
    weights = _weights(model)
    hidden, intermediate = geometry(model)
    groups: dict[str, list[str]] = {}
    layer, pending = 0, []  # (node name, role) of the layer being read

    def close(index: int | None) -> None:
        squares = [i for i, (_, role) in enumerate(pending) if role == "square"]
        for i, (name, role) in enumerate(pending):
            if role == "square":
                role = "attention-out" if i == squares[-1] else "qkv"
            key = HEAD if index is None else f"layer{index}.{role}"
            groups.setdefault(key, []).append(name)
        pending.clear()

    for node in model.graph.node:
        if node.op_type not in op_types:
            continue
        w = _weight_of(node, weights)
        if node.op_type == "Attention":
            role = "attention"
        elif w is None:
            role = "attention-core"
        elif w == [hidden, hidden]:
            role = "square"
        elif w == [hidden, intermediate]:
            role = "ffn-up"
        elif w == [intermediate, hidden]:
            role = "ffn-down"
        else:
            role = "other"
        pending.append((node.name or f"{node.op_type}_{len(pending)}", role))
        if role == "ffn-down":
            close(layer)
            layer += 1
    close(None)
    return groups


def describe_groups(model, groups: dict[str, list[str]]) -> dict[str, dict]:
    """Per group, its node count and weight elements: the multiply-adds one token costs
    it, a proxy for what keeping it in float costs (the attention core has none)."""
    weights = _weights(model)
    by_name = {n.name: n for n in model.graph.node}
    facts = {}
    for key, names in groups.items():
        shapes = [_weight_of(by_name[n], weights) for n in names if n in by_name]
        facts[key] = {"nodes": len(names), "weights": sum(w[0] * w[1] for w in shapes if w)}
    return facts


def resolve_groups(groups: dict[str, list[str]], wanted, option: str = "keep_float") -> list[str]:
    """The node names of `wanted`, each a group ("layer3.ffn-down"), a role in every
    layer ("ffn-down"), a whole layer ("layer3") or "head"; BadInput, naming the
    `option` that asked, on any other."""
    nodes: list[str] = []
    for item in wanted or ():
        matched = [
            key
            for key in groups
            if item == key or key.startswith(f"{item}.") or key.endswith(f".{item}")
        ]
        if not matched:
            raise BadInput(
                f"{option}: {item!r} names no node group of this model; its groups are "
                f"{', '.join(groups)} (or a role in every layer: {', '.join(ROLES[1:-1])})"
            )
        nodes += [n for key in matched for n in groups[key] if n not in nodes]
    return nodes
