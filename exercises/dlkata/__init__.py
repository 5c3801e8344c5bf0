"""The student's side of dlkata: the comparisons and diagnostics the public tests use, and the
``dlkata`` command (``dlkata list``, ``check``, ``hint``, ``watch``).

``TOPICS`` is the order in which the katas are meant to be done; each builds on the ones before.
"""
TOPICS = ("value", "bigram", "cross_entropy", "perplexity", "embedding", "rnn", "bptt", "lstm", "gru", "norms")
