"""insight.concierge: a traveller's questions classified as a concierge would, what they
name pulled out, the trip's context narrowed to what matters, and a useful offline answer."""

from __future__ import annotations

from typing import Any

import pytest

from insight.concierge import (
    classify,
    missing_details,
    offline_answer,
    party_of,
    relevant_context,
    trip_facts,
    understand,
)

TRIP: dict[str, Any] = {
    "destination": "Lisbon",
    "dates": {"start": "2026-05-14", "end": "2026-05-18"},
    "party": {"adults": 2, "children": 2},
    "accommodation": "a hotel in Chiado",
    "interests": ["food", "viewpoints"],
    "budget": "mid-range",
    "mobility": "pushchair",
}


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Can you book us a table for four at a seafood place on Friday?", "booking"),
        ("I'd like to reserve two tickets for the fado show tonight", "booking"),
        ("Could we rent a car for the day trip to Sintra?", "booking"),
        ("How do we get from the airport to our hotel?", "directions"),
        ("Which bus goes to Belém, and how far is it?", "directions"),
        ("What's the nearest metro station to the Time Out Market?", "directions"),
        ("What time does the Gulbenkian Museum open on Monday?", "opening_hours"),
        ("Is the Oceanário open on public holidays?", "opening_hours"),
        ("What are the opening hours of the Jerónimos Monastery?", "opening_hours"),
        ("Can you recommend a good restaurant for kids near Chiado?", "recommendation"),
        ("What should we do on a rainy afternoon?", "recommendation"),
        ("Where can we eat the best pastéis de nata?", "recommendation"),
        ("Do I need a visa to visit Portugal?", "general"),
        ("Is tap water safe to drink here?", "general"),
        ("How much should I tip in restaurants?", "general"),
    ],
)
def test_questions_are_classified_as_a_concierge_would(question: str, kind: str) -> None:
    assert classify(question)[0] == kind


def test_a_question_of_two_kinds_takes_the_stronger_and_keeps_the_other() -> None:
    kind, also, scores = classify(
        "Can you book a table at the best seafood restaurant for tonight?"
    )
    assert (kind, also) == ("booking", ("recommendation",))
    assert scores["booking"] > scores["recommendation"] > 0 == scores["directions"]


def test_what_the_question_names_is_pulled_out() -> None:
    understood = understand(
        "Can you book us a table for four at Cervejaria Ramiro on Friday at 8pm?", TRIP
    )
    assert understood.kind == "booking"
    assert understood.party_size == 4
    assert understood.day == "on Friday"
    assert understood.time == "at 8pm"
    assert understood.places == ("Cervejaria Ramiro",)
    assert understood.topics == ("restaurant",)
    # The trip's parts that matter to a booking, and only those.
    assert understood.context == {
        "destination": "Lisbon",
        "dates": TRIP["dates"],
        "party": TRIP["party"],
        "budget": "mid-range",
        "accommodation": "a hotel in Chiado",
    }


def test_each_kind_takes_only_the_context_it_needs() -> None:
    assert relevant_context("opening_hours", TRIP) == {
        "destination": "Lisbon",
        "dates": TRIP["dates"],
    }
    assert set(relevant_context("directions", TRIP)) == {
        "destination",
        "accommodation",
        "party",
        "mobility",
    }
    assert relevant_context("general", {"destination": "", "party": None}) == {}


def test_a_party_size_in_the_question_counts_the_trip_s_children_among_it() -> None:
    assert party_of(TRIP, asked=4) == (2, 2)
    assert party_of(TRIP) == (2, 2)
    assert party_of({"party": 3}) == (3, 0)
    assert party_of({}, asked=2) == (2, 0)


def test_the_offline_answer_uses_the_question_and_the_trip() -> None:
    understood = understand(
        "Can you book us a table for four at a good seafood restaurant on Friday at 8pm?", TRIP
    )
    answer = offline_answer(understood)
    assert answer.startswith(
        "To book a table in Lisbon for 2 adults and 2 children (on Friday at 8pm): check "
        "availability on the venue's own website"
    )
    assert "say you are bringing children" in answer
    assert "To help further" not in answer  # nothing is missing
    facts = trip_facts(understood)
    assert facts[:4] == [
        "Kind of question: Booking",
        "Destination: Lisbon",
        "Trip dates: 2026-05-14 to 2026-05-18",
        "Day asked about: on Friday",
    ]


def test_directions_start_from_where_the_party_stays() -> None:
    understood = understand("How do we get to the Castelo de São Jorge?", TRIP)
    answer = offline_answer(understood)
    assert answer.startswith("To get from a hotel in Chiado to the Castelo de São Jorge in Lisbon")
    assert "choose step-free routes" in answer


def test_a_route_s_ends_are_read_and_our_hotel_is_the_trip_s() -> None:
    understood = understand("How do we get from the airport to our hotel?", TRIP)
    assert (understood.kind, understood.origin, understood.goal) == (
        "directions",
        "the airport",
        "our hotel",
    )
    assert offline_answer(understood).startswith(
        "To get from the airport to a hotel in Chiado in Lisbon: compare public transport"
    )
    assert missing_details(understood) == []
    alone = understand("How do I get to the old town?")
    assert missing_details(alone) == ["Where will you be starting from?"]


def test_recommendations_name_what_is_looked_for() -> None:
    understood = understand("Can you recommend a good place for dinner with kids?", TRIP)
    assert understood.kind == "recommendation"
    answer = offline_answer(understood)
    assert answer.startswith("To find good places to eat in Lisbon: shortlist three")
    assert "choose family-friendly places and go early" in answer
    assert "keep to your budget (mid-range)" in answer


def test_what_is_missing_is_asked_back() -> None:
    understood = understand("Can you book a table?")
    assert understood.kind == "booking"
    assert missing_details(understood) == [
        "Which date would you like?",
        "What time suits you?",
        "How many people is it for?",
    ]
    assert offline_answer(understood).endswith(
        "To help further, tell me: Which date would you like? What time suits you? How many "
        "people is it for?"
    )
    hours = understand("When does it open?")
    assert missing_details(hours) == ["Which place do you mean?", "Which day will you go?"]


def test_a_general_question_points_to_official_sources() -> None:
    understood = understand("Do I need a visa?", {"destination": "Japan"})
    assert understood.kind == "general"
    assert offline_answer(understood).startswith(
        "For a general question like this for Japan, the most reliable sources"
    )
