"""Verification: accuracy parity and tokenizer consistency, as build gates and for CI.

Parity goes through three stages: `results` (run: logits, or what a build saved),
`compare` (one comparison over two results, with `scores` for the one-sided metrics)
and `gate` (the gates, as the named checks of `checks`). `tokenizer` checks the
runtime tokenizer, `suite` assembles everything into one report, `reports` renders it.
"""
