"""Verification: accuracy parity and tokenizer consistency, as build gates and for CI."""
