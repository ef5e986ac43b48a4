"""The money formatters of ``orchestrator.domain.money``: the one place the CLI, the web pages and the JSON output
format token amounts, wei and micro-USD. The expected texts are what those outputs showed before they shared it."""

from __future__ import annotations

from decimal import Decimal

from orchestrator.domain.money import TokenBook, TokenInfo, amounts_text, base_units, dollars, units, usd_text

DWR = "0x" + "aa" * 20
UNKNOWN = "0x" + "e0" * 20
BOOK = TokenBook([TokenInfo(DWR, "DWR", 18)])


def test_token_amounts_on_one_line() -> None:
    assert amounts_text({DWR: 15 * 10**18, UNKNOWN: 7}, BOOK) == "15 DWR, 7 units of 0xe0e0…e0e0"
    assert amounts_text({DWR: 10**18 // 8}, BOOK) == "0.125 DWR"
    assert amounts_text({}, BOOK) == "0"


def test_json_amounts_are_exact_strings() -> None:
    assert base_units({DWR: 10**30 + 1}) == {DWR: "1000000000000000000000000000001"}


def test_micro_usd_for_tables_is_exact() -> None:
    assert usd_text(4200) == "0.0042"
    assert usd_text(1_500_000) == "1.5"
    assert usd_text(1) == "0.000001"
    assert usd_text(0) == "0"


def test_dollars_for_pages() -> None:
    assert dollars(4200) == "$0.0042"
    assert dollars(1_234_567_890) == "$1,234.5679"
    assert dollars(Decimal("0.0042"), micro=False) == "$0.0042"
    assert dollars(None) == "—"


def test_wei_as_eth() -> None:
    assert units(21_000 * 10**9) == "0.000021"
    assert units(10**9) == "<0.00000001"
    assert units(0) == "0"
