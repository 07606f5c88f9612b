"""PACE CAN and BAC key candidates from a card QR (docs/cccd.md §2, §6)."""

from __future__ import annotations

from datetime import date

import pytest

from edge_agent.cccd import BacKey, bac_candidates, expiry_candidates, pace_can, parse_id_number


def test_can_is_last_six_digits() -> None:
    assert pace_can(parse_id_number("079303001234")) == "001234"


@pytest.mark.parametrize(
    ("born", "issued", "expected"),
    [
        # Law 59/2014: milestones 25, 40, 60.
        (date(2003, 5, 15), date(2021, 8, 20), [date(2028, 5, 15)]),
        (date(1997, 1, 10), date(2021, 1, 11), [date(2037, 1, 10)]),  # issued within 2 y of 25
        (date(1985, 7, 1), date(2021, 7, 2), [date(2025, 7, 1)]),
        (date(1985, 7, 1), date(2023, 7, 2), [date(2045, 7, 1)]),  # within 2 y of 40
        (date(1962, 4, 4), date(2021, 4, 4), [None]),  # issued at 59: never expires
        (date(1963, 9, 9), date(2020, 9, 9), [date(2023, 9, 9)]),
        (date(1963, 9, 9), date(2021, 9, 9), [None, date(2023, 9, 9)]),  # exactly 2 y before 60
        # Law 26/2023 from 1 July 2024: milestone 14 as well.
        (date(2015, 3, 3), date(2025, 3, 3), [date(2029, 3, 3)]),
        (date(2012, 3, 3), date(2025, 3, 3), [date(2037, 3, 3)]),
        (date(1950, 1, 1), date(2025, 1, 1), [None]),
    ],
)
def test_expiry_rule(born: date, issued: date, expected: list[date | None]) -> None:
    assert expiry_candidates(born, issued) == expected


def test_leap_day_birthday_gives_both_readings_feb28_first() -> None:
    assert expiry_candidates(date(2000, 2, 29), date(2021, 3, 1)) == [date(2025, 2, 28),
                                                                      date(2025, 3, 1)]


def test_transition_of_2024_tries_both_laws_law_in_force_first() -> None:
    # A child of 10 issued just after 1 July 2024: the 2023 law says 14, the 2014 law 25.
    assert expiry_candidates(date(2014, 8, 1), date(2024, 8, 1)) == [date(2028, 8, 1),
                                                                      date(2039, 8, 1)]
    # Just before: the 2014 law first.
    assert expiry_candidates(date(2014, 8, 1), date(2024, 6, 1)) == [date(2039, 8, 1),
                                                                      date(2028, 8, 1)]
    # Far from the transition only one law applies.
    assert expiry_candidates(date(2014, 8, 1), date(2026, 1, 1)) == [date(2028, 8, 1)]


def test_bac_candidates_from_qr_fields() -> None:
    keys = bac_candidates(parse_id_number("079303001234"), date(2003, 5, 15), date(2021, 8, 20))
    assert keys == [BacKey("303001234", "030515", "280515")]
    assert keys[0].mrz_information == "303001234203051522805151"


def test_never_expiring_card_uses_991231() -> None:
    keys = bac_candidates(parse_id_number("001062012345"), date(1962, 4, 4), date(2021, 4, 4))
    assert [k.date_of_expiry for k in keys] == ["991231"]
