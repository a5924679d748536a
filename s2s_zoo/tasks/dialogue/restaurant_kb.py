"""The restaurant knowledge base behind the generated bAbI-style dialogue task.

Restaurants are named as in bAbI-dialog, ``resto_<location>_<price>_<cuisine>_<n>stars``,
with ``..._phone`` and ``..._address`` values, so a model has to copy entity tokens
rather than generate them from a fixed vocabulary. Two disjoint vocabularies of
locations and cuisines build two knowledge bases: the in-vocabulary one used for
training, development and the ordinary test set, and an out-of-vocabulary (OOV) one
whose restaurants, cuisines and locations never occur in training.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

SLOTS = ("cuisine", "location", "size", "price")  # also the order of api_call arguments

LOCATIONS = tuple("rome paris madrid london bombay tokyo seoul hanoi bangkok boston".split())
CUISINES = tuple(
    "italian french british spanish indian thai japanese chinese vietnamese korean".split()
)
OOV_LOCATIONS = tuple("berlin lisbon oslo cairo lima dublin vienna athens prague sydney".split())
OOV_CUISINES = tuple(
    "greek mexican turkish ethiopian lebanese moroccan peruvian german polish brazilian".split()
)
PRICES = ("cheap", "moderate", "expensive")
PARTY_SIZES = ("two", "four", "six", "eight")
RATINGS = tuple(range(1, 9))

# Attribute order of a restaurant's KB lines (the order bAbI-dialog lists them in).
ATTRIBUTES = ("R_phone", "R_cuisine", "R_address", "R_location", "R_number", "R_price", "R_rating")


@dataclass(frozen=True)
class Restaurant:
    location: str
    price: str
    cuisine: str
    rating: int
    size: str

    @property
    def name(self) -> str:
        return f"resto_{self.location}_{self.price}_{self.cuisine}_{self.rating}stars"

    @property
    def phone(self) -> str:
        return f"{self.name}_phone"

    @property
    def address(self) -> str:
        return f"{self.name}_address"

    def slots(self) -> dict[str, str]:
        """The four values an api_call asks for."""
        return {
            "cuisine": self.cuisine,
            "location": self.location,
            "size": self.size,
            "price": self.price,
        }

    def facts(self) -> list[str]:
        """The seven KB lines describing this restaurant."""
        values = {
            "R_phone": self.phone,
            "R_cuisine": self.cuisine,
            "R_address": self.address,
            "R_location": self.location,
            "R_number": self.size,
            "R_price": self.price,
            "R_rating": str(self.rating),
        }
        return [f"{self.name} {attr} {values[attr]}" for attr in ATTRIBUTES]


class RestaurantKB:
    """All restaurants of one vocabulary, indexed by the api_call query they answer."""

    def __init__(
        self, restaurants: Sequence[Restaurant], locations: Sequence[str], cuisines: Sequence[str]
    ) -> None:
        self.restaurants = list(restaurants)
        self.locations = tuple(locations)
        self.cuisines = tuple(cuisines)
        self._by_query: dict[tuple[str, ...], list[Restaurant]] = {}
        for r in self.restaurants:
            self._by_query.setdefault(self.key(r.slots()), []).append(r)
        self._popular: dict[int, list[Restaurant]] = {}

    @staticmethod
    def key(goal: dict[str, str]) -> tuple[str, ...]:
        return tuple(goal[s] for s in SLOTS)

    def values(self, slot: str) -> tuple[str, ...]:
        return {
            "cuisine": self.cuisines,
            "location": self.locations,
            "size": PARTY_SIZES,
            "price": PRICES,
        }[slot]

    def matches(self, goal: dict[str, str]) -> list[Restaurant]:
        """Restaurants answering the query, best rated first."""
        found = self._by_query.get(self.key(goal), [])
        return sorted(found, key=lambda r: -r.rating)

    def with_matches(self, min_matches: int) -> list[Restaurant]:
        """Restaurants whose own query returns at least `min_matches` restaurants."""
        if min_matches not in self._popular:
            self._popular[min_matches] = [
                r for r in self.restaurants if len(self.matches(r.slots())) >= min_matches
            ]
        return self._popular[min_matches]


def build_kb(
    rng: random.Random,
    locations: Sequence[str],
    cuisines: Sequence[str],
    min_per_group: int = 4,
    max_per_group: int = 8,
) -> RestaurantKB:
    """For every (location, price, cuisine), 4-8 restaurants with distinct ratings (so
    names are unique), each seating one party size."""
    if not 1 <= min_per_group <= max_per_group <= len(RATINGS):
        raise ValueError(f"need 1 <= min_per_group <= max_per_group <= {len(RATINGS)}")
    restaurants = []
    for location in locations:
        for price in PRICES:
            for cuisine in cuisines:
                count = rng.randint(min_per_group, max_per_group)
                for rating in sorted(rng.sample(RATINGS, count)):
                    restaurants.append(
                        Restaurant(location, price, cuisine, rating, rng.choice(PARTY_SIZES))
                    )
    return RestaurantKB(restaurants, locations, cuisines)
