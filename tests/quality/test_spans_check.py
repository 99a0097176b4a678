"""The localisation-aware span check: what a good translator may change passes, what breaks a record fails
for the reason that names it. The examples are the localisations seen in real third-party translations."""

from __future__ import annotations

import pytest

from quality.spans_check import field_mismatch, source_numbers, target_values
from schemas.spans import typed_spans


def check(source: str, target: str) -> str | None:
    found = field_mismatch(source, target, min_number=10, min_code_token_recall=0.9)
    return found[0] if found else None


@pytest.mark.parametrize(("source", "target"), [
    ("It costs $20 a month.", "每月20美元。"),  # currency translated and moved
    ("It is 4 cm long, 10cm wide.", "它长4厘米，宽10 cm。"),  # unit translated, space added
    ("About 1,000 people and 3.5 tons.", "Etwa 1.000 Menschen und 3,5 Tonnen."),  # German number format
    ("About 1,000 people.", "Environ 1 000 personnes."),  # French thousands with a space
    ("The company has 1.5 million users.", "该公司有150万用户。"),  # myriad scale
    ("Dear [Name], thank you.", "亲爱的[姓名]，谢谢。"),  # bracket words translated, shape kept
    ("Hello {name}, see https://example.com/a.", "Hallo {name}, siehe https://example.com/a."),
    ("Write `x = 1` first.", "先写 `x  =  1`。"),  # inline code modulo whitespace
    ("Call range() here.", "在这里调用 range（）。"),  # full-width punctuation of an input method
    ("def add(a, b):\n    # add two numbers\n    return a + b", "def add(a, b):\n    # 两数相加\n    return a + b"),
    ('print("Hello World")', 'print("Hallo Welt")'),  # words inside a string literal
    ("Give three examples.", "Nennen Sie drei Beispiele."),  # small numbers are not checked
    ("In 2020 there were 48/2 = 24 teams.", "2020年有 48/2 = 24 支队伍。"),
    ("Years = 15", "Jahre = 15"),  # a word given a value is prose, not code
    ("A = πr²", "A = πr²"),  # compatibility characters on both sides
    ("Find the last three digits of 343⁷.", "Finde die letzten drei Ziffern von 343⁷."),
    ("It reaches 10,800 meters (35,400 ft).", "Er erreicht 10.800 Meter."),  # a unit restatement dropped
    ("100°F is 37.77777777777778°C.", "100°F entsprechen 37,777777777778°C."),  # a long decimal rounded
    ("The store closes at 10pm.", "Der Laden schließt um 22 Uhr."),  # 24-hour clock
    ("Complete the list of <adjectives>.", "Vervollständige die Liste der <Adjektive>."),  # angle placeholder
    ("<Insert presentation>", "<插入演示文稿>"),
    ("Length = 2, Width = 3, Height = 4", "Länge = 2, Breite = 3, Höhe = 4"),  # words given values
    ("Radius = 5cm\nDiameter = 10cm", "半径 = 5厘米\n直径 = 10厘米"),
    ("List the operation(s) used.", "Nenne die verwendete(n) Operation(en)."),  # a plural, not a call
    ("<p>This is some text</p>", "<p>这是一些文本</p>"),  # the visible text of markup
    ("City = London\nMonth = March", "Stadt = London\nMonat = März"),
    ("11/22/63 is a novel.", "Der 22.11.63 ist ein Roman."),  # a date in the local order
    ("print('I love coding!')\nfor i in range(4):\n    print('I love coding!')",
     "print('Ich liebe Coding!')\nfor i in range(4):\n    print('Ich liebe Coding!')"),  # single-quoted strings
])
def test_localisation_passes(source: str, target: str) -> None:
    assert check(source, target) is None


@pytest.mark.parametrize(("source", "target", "reason"), [
    ("if x > 10:\n    print(x)\nelse:\n    print(0)", "wenn x > 10:\n    print(x)\nsonst:\n    print(0)",
     "code_changed"),
    ("UPDATE Employees\nSET age = 32\nWHERE employee_id = 1234",
     "UPDATE Mitarbeiter\nSET alter = 32\nWHERE mitarbeiter_id = 1234", "code_changed"),
    ("See https://example.com/docs/setup for details.", "Siehe https://example.com/docs für Details.", "url_changed"),
    ("Mail jane.doe@example.org today.", "Schreiben Sie heute an Jane Doe.", "url_changed"),
    ("Hello {name}, welcome.", "Hallo {Name}, willkommen.", "placeholder_lost"),
    ("Sign as [Your Name] from [Company].", "Unterschreiben Sie als Ihr Name von Firma.", "placeholder_lost"),
    ("The tower is 330 meters tall.", "Der Turm ist 300 Meter hoch.", "number_changed"),
    ("It reaches 10,800 meters (35,400 ft).", "Er erreicht 35.400 ft.", "number_changed"),  # the first one is kept
    ("Completes at 37.77777777777778 s.", "Endet bei 37,7 s.", "number_changed"),  # rounded to one decimal only
    ("<Insert presentation>", "Präsentation einfügen", "placeholder_lost"),  # the angle brackets lost
    ("Use <div> here.", "Benutze <Teil> hier.", "code_changed"),  # an HTML element is markup
    ('<button style="color: red">Buy now</button>', '<按钮样式="颜色：红色">立即购买</button>', "code_changed"),
    ("int x = 10\nint y = 5", "整数 x = 10\n整数 y = 5", "code_changed"),  # a declaration is code
    ("print('Please enter your name:')\nname = input()", "print('Bitte Namen eingeben:')\nName = Eingabe()",
     "code_changed"),
    ("So <<48/2=24>>24 each.", "所以每人24。", "code_changed"),
    ("Years = 15", "Jahre = 16", "number_changed"),
    ("int a = 10;", "整数 a = 10;", "code_changed"),
])
def test_defects_fail_for_their_reason(source: str, target: str, reason: str) -> None:
    assert check(source, target) == reason


def test_numbers_are_normalised_across_locales() -> None:
    assert {"1000", "1"} <= {v for _, values in source_numbers("1,000", 10) for v in values}
    assert "3.5" in target_values("3,5")
    assert "1000" in target_values("1 000")
    assert "1500000" in target_values("150万")
    assert source_numbers("three 3 apples", 10) == []  # spelled-out-able integers are not checked


def test_the_span_contract_gives_kinds() -> None:
    kinds = [kind for kind, _ in typed_spans("Use `f()` at https://x.org with {name}, $5 and 48/2 = 24.\n"
                                             "def f():\n    return 1")]
    assert kinds == ["code", "url", "placeholder", "money", "math", "block"]
