"""ISO 4217 currencies the shop takes, with their minor units (decimal places of one unit).

Shared by the contracts that carry money (orders) and the FX connector's list of rates to fetch:
an order in a currency without a USD rate could not be converted, so both read this one list.
A test compares the codes with Debian's iso-codes data when it is installed.
"""
from __future__ import annotations

# code -> minor units (JPY and KRW have none: an amount of 0.5 JPY is not a price).
MINOR_UNITS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CNY": 2, "HKD": 2,
    "SGD": 2, "INR": 2, "KRW": 0, "BRL": 2, "MXN": 2, "ZAR": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
    "CZK": 2,
}

CODES: tuple[str, ...] = tuple(sorted(MINOR_UNITS))
