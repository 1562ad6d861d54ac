"""Offline two-step arithmetic word problems (small numbers) for the study: seeded generator, verifier, parser.

Each problem carries its question, the integer answer, and the arithmetic expression the answer comes from;
verify() re-evaluates that expression independently (a tiny AST evaluator) and checks the text mentions
every operand, so a template bug cannot silently produce a wrong key.
"""
from __future__ import annotations

import ast
import random
import re
from dataclasses import dataclass
from typing import List, Optional

_NAMES = [("Anna", "She"), ("Ben", "He"), ("Carla", "She"), ("David", "He"), ("Emma", "She"), ("Farid", "He"),
          ("Grace", "She"), ("Hugo", "He"), ("Ines", "She"), ("Jonas", "He")]
_ITEMS = ["pencils", "apples", "stickers", "marbles", "cookies", "cards", "stamps", "shells"]


@dataclass(frozen=True)
class Problem:
    question: str
    answer: int
    expression: str


def _make(rng: random.Random) -> Problem:
    name, pron = rng.choice(_NAMES)
    item = rng.choice(_ITEMS)
    kind = rng.randrange(6)
    if kind == 0:
        a, b = rng.randint(2, 5), rng.randint(2, 6)
        c = rng.randint(1, a * b - 1)
        return Problem(f"{name} has {a} boxes with {b} {item} in each box. {pron} gives away {c} {item}. "
                       f"How many {item} does {name} have left?", a * b - c, f"{a} * {b} - {c}")
    if kind == 1:
        a, b = rng.randint(2, 4), rng.randint(2, 5)
        c = next(v for v in (10, 20, 50) if v > a * b)
        return Problem(f"{name} buys {a} packs of {item}. Each pack costs {b} dollars. {pron} pays with a "
                       f"{c}-dollar bill. How many dollars of change does {name} get?", c - a * b, f"{c} - {a} * {b}")
    if kind == 2:
        a = rng.randint(12, 30)
        b = rng.randint(2, a // 3)
        c = rng.randint(1, a - b - 1)
        return Problem(f"A shop had {a} {item}. It sold {b} {item} in the morning and {c} {item} in the afternoon. "
                       f"How many {item} are left?", a - b - c, f"{a} - {b} - {c}")
    if kind == 3:
        a, b, c = rng.randint(2, 6), rng.randint(2, 4), rng.randint(1, 9)
        return Problem(f"{name} reads {a} pages every day for {b} days, then reads {c} more pages. "
                       f"How many pages does {name} read in total?", a * b + c, f"{a} * {b} + {c}")
    if kind == 4:
        a, b = rng.randint(2, 5), rng.randint(2, 6)
        c = rng.randint(2, a * b - 1)
        return Problem(f"There are {a} rows of chairs with {b} chairs in each row. {c} chairs are broken. "
                       f"How many chairs can be used?", a * b - c, f"{a} * {b} - {c}")
    c = rng.randint(2, 4)
    total = c * rng.randint(2, 5)
    a = rng.randint(1, total - 1)
    b = total - a
    return Problem(f"{name} has {a} {item} and buys {b} more. {pron} shares all of them equally among {c} "
                   f"friends. How many {item} does each friend get?", total // c, f"({a} + {b}) // {c}")


def make_problems(count: int, seed: int) -> List[Problem]:
    """``count`` distinct verified problems, the same for the same seed."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < count:
        p = _make(rng)
        if p.question not in seen:
            verify(p)
            seen.add(p.question)
            out.append(p)
    return out


def _eval(node):
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.FloorDiv):
            if left % right:
                raise ValueError(f"inexact division {left} // {right}")
            return left // right
    raise ValueError(f"unsupported expression element {ast.dump(node)}")


def verify(p: Problem) -> None:
    """Raise ValueError unless the expression evaluates to the answer (a positive int) and uses the text's numbers."""
    value = _eval(ast.parse(p.expression, mode="eval"))
    if value != p.answer or p.answer <= 0:
        raise ValueError(f"problem key mismatch: {p.expression} = {value}, stored answer {p.answer}: {p.question}")
    numbers = set(re.findall(r"\d+", p.question))
    missing = [n for n in re.findall(r"\d+", p.expression) if n not in numbers]
    if missing:
        raise ValueError(f"expression uses numbers {missing} absent from the question: {p.question}")


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_answer(text: str) -> Optional[int]:
    """The model's final answer: the number after the last "answer is", else the last number in the text."""
    tail = text
    m = list(re.finditer(r"answer is", text, flags=re.IGNORECASE))
    if m:
        tail = text[m[-1].end():]
        found = _NUMBER.findall(tail)
        if found:
            return _to_int(found[0])
    found = _NUMBER.findall(text)
    return _to_int(found[-1]) if found else None


def _to_int(s: str) -> Optional[int]:
    s = s.replace(",", "")
    try:
        value = float(s)
    except ValueError:
        return None
    return int(value) if value == int(value) else None
