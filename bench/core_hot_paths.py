"""Per-message core work of a bulk request: number normalisation, segmentation and
the EAPI 7-bit text mapping.

Each figure is printed beside a floor measured on the same inputs in the same
run: ``phonenumbers.parse`` + validity + type for normalisation (what the fast
path replaces), and ``str.isascii`` for segmentation (the least any character
check can cost).

    .venv/bin/python bench/core_hot_paths.py
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

import phonenumbers

from smsgate.core.eapi_text import latin1_gsm_to_text
from smsgate.core.encoding import segment
from smsgate.core.numbers import NumberNormalizer

COUNT = 30_000


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def kenyan_numbers(count: int) -> list[str]:
    rng = random.Random(254)
    subscribers: set[str] = set()
    while len(subscribers) < count:
        subscribers.add(f"7{rng.randrange(10**8):08d}")
    shapes = ["254{}", "+254{}", "0{}", "00254{}"]
    return [shapes[i % 4].format(sub) for i, sub in enumerate(sorted(subscribers))]


def typical_messages(count: int) -> list[str]:
    names = ["Anna", "Brian", "Chidi", "Dana", "Emeka", "Fatma", "Goran", "Hiro"]
    return [
        f"Hello {names[i % len(names)]}, your code is {100000 + i * 7 % 900000}. "
        f"It expires in 10 minutes. Do not share it with anyone! Ref {i:06d}"
        for i in range(count)
    ]


def normalise_all(normalizer: NumberNormalizer, inputs: Sequence[str]) -> None:
    for raw in inputs:
        normalizer.normalize(raw)


def phonenumbers_all(inputs: Sequence[str]) -> None:
    for raw in inputs:
        number = phonenumbers.parse(raw, "KE")
        if phonenumbers.is_valid_number(number):
            phonenumbers.number_type(number)
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def report(name: str, unit: str, figure: float, floor_name: str, floor: float) -> None:
    print(
        f"{name:<28} {figure / COUNT * 1e6:6.2f} µs/{unit}   "
        f"floor ({floor_name}) {floor / COUNT * 1e6:6.2f} µs   ratio {figure / floor:5.2f}x"
    )


def main() -> None:
    numbers = kenyan_numbers(COUNT)
    normalizer = NumberNormalizer("KE")
    normalizer.normalize(numbers[0])  # metadata is prepared once per process
    report(
        "normalize (fast path)",
        "number",
        best_of(5, lambda: normalise_all(normalizer, numbers)),
        "phonenumbers",
        best_of(2, lambda: phonenumbers_all(numbers)),
    )
    messages = typical_messages(COUNT)
    report(
        "segment",
        "message",
        best_of(5, lambda: [segment(m) for m in messages]),
        "str.isascii",
        best_of(5, lambda: [m.isascii() for m in messages]),
    )
    report(
        "EAPI 7bit carriage to text",
        "message",
        best_of(5, lambda: [latin1_gsm_to_text(m) for m in messages]),
        "str.isascii",
        best_of(5, lambda: [m.isascii() for m in messages]),
    )


if __name__ == "__main__":
    main()
