"""insight.research: the local planner splits realistic queries into the sub-questions a
person would ask, a model's plan is read robustly, and the offline texts follow the plan."""

from __future__ import annotations

import pytest

from insight.research import (
    offline_answer,
    offline_summary,
    parse_questions,
    plan_questions,
    question_count,
    question_facet,
    render_report,
    short_question,
)


@pytest.mark.parametrize(
    ("depth", "count"), [(None, 5), (1, 3), (2, 5), (3, 7), (1.0, 3), (3.0, 7)]
)
def test_depth_sets_how_many_sub_questions(depth: float | None, count: int) -> None:
    assert question_count(depth) == count


def test_a_comparison_asks_about_each_option_then_compares_them() -> None:
    plan = plan_questions("Compare PostgreSQL vs MySQL for a small SaaS startup.", 7)
    assert plan.kind == "comparison"
    assert plan.questions == (
        "What are the strengths and weaknesses of PostgreSQL for a small SaaS startup?",
        "What are the strengths and weaknesses of MySQL for a small SaaS startup?",
        "How do PostgreSQL and MySQL differ in how they work for a small SaaS startup?",
        "Which is the better choice for a small SaaS startup, and under what conditions?",
        "How do PostgreSQL and MySQL compare on cost for a small SaaS startup?",
        "How do PostgreSQL and MySQL compare on risks and limitations for a small SaaS startup?",
        "What do real-world examples show about PostgreSQL and MySQL for a small SaaS startup?",
    )


def test_a_choice_between_actions_shares_what_is_said_once() -> None:
    plan = plan_questions("Should we rent or buy a home in Berlin?", 5)
    assert plan.kind == "comparison"
    assert plan.questions == (
        "What are the pros and cons if we rent a home in Berlin?",
        "What are the pros and cons if we buy a home in Berlin?",
        "Which costs more in Berlin: to rent a home or to buy a home?",
        "What are the risks if we rent a home rather than buy a home in Berlin?",
        "What timeline should we expect in Berlin if we rent a home, and if we buy a home?",
    )
    moving = plan_questions("Should I move to Lisbon or Porto for remote work?", 3)
    assert moving.questions[:2] == (
        "What are the pros and cons if I move to Lisbon for remote work?",
        "What are the pros and cons if I move to Porto for remote work?",
    )


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("Which is better for a beginner: Python or JavaScript?", ("Python", "JavaScript")),
        ("Is Lisbon or Porto better for remote work?", ("Lisbon", "Porto")),
        ("What is the difference between TCP and UDP?", ("TCP", "UDP")),
        ("Python vs Go vs Rust for backend services", ("Python", "Go", "Rust")),
    ],
)
def test_every_way_of_asking_for_a_comparison_finds_the_options(
    query: str, options: tuple[str, ...]
) -> None:
    plan = plan_questions(query, 7)
    assert plan.kind == "comparison"
    strengths = [q for q in plan.questions if q.startswith("What are the strengths")]
    assert len(strengths) == len(options)
    for question, option in zip(strengths, options, strict=True):
        assert f"weaknesses of {option}" in question


def test_a_list_under_one_frame_becomes_one_question_per_item() -> None:
    plan = plan_questions("What are the health benefits and risks of intermittent fasting?", 5)
    assert plan.topic == "intermittent fasting"
    assert plan.questions == (
        "What are the health benefits of intermittent fasting?",
        "What are the risks of intermittent fasting?",
        "What is the background and history of intermittent fasting?",
        "What are the key facts and figures about intermittent fasting?",
        "Which real-world examples illustrate intermittent fasting?",
    )


def test_a_list_at_the_end_shares_the_words_before_it() -> None:
    plan = plan_questions("Impact of remote work on productivity, wages and housing markets", 5)
    assert plan.topic == "remote work"
    assert plan.questions[:3] == (
        "What is the impact of remote work on productivity?",
        "What is the impact of remote work on wages?",
        "What is the impact of remote work on housing markets?",
    )
    costs = plan_questions("What are the costs of solar panels and heat pumps in Germany?", 3)
    assert costs.questions[:2] == (
        "What are the costs of solar panels in Germany?",
        "What are the costs of heat pumps in Germany?",
    )


def test_a_list_s_topic_is_what_its_questions_share() -> None:
    europe = plan_questions("Please research the impact of AI on jobs and wages in Europe", 3)
    assert europe.topic == "AI in Europe"
    assert europe.questions[:2] == (
        "What is the impact of AI on jobs in Europe?",
        "What is the impact of AI on wages in Europe?",
    )
    packing = plan_questions("What should I pack for Iceland and Norway?", 3)
    assert packing.topic == "Iceland and Norway"
    assert packing.questions[:2] == (
        "What should I pack for Iceland?",
        "What should I pack for Norway?",
    )
    learning = plan_questions("What is the best way to learn Spanish and French?", 2)
    assert learning.questions == (
        "What is the best way to learn Spanish?",
        "What is the best way to learn French?",
    )


def test_a_capital_that_is_only_the_query_s_first_letter_is_dropped() -> None:
    plan = plan_questions("Rent vs buy in London", 2)
    assert plan.questions == (
        "What are the strengths and weaknesses of rent in London?",
        "What are the strengths and weaknesses of buy in London?",
    )
    assert plan_questions("Python vs Go", 1).questions == (
        "What are the strengths and weaknesses of Python?",
    )


def test_several_questions_are_taken_one_by_one_then_the_facets_they_miss() -> None:
    plan = plan_questions(
        "How do I get a work visa for Canada and what does it cost to live in Toronto?", 5
    )
    assert plan.kind == "how_to"
    assert plan.questions == (
        "How do I get a work visa for Canada?",
        "What does it cost to live in Toronto?",
        "How long does it take to get a work visa for Canada?",
        "What are the common mistakes and risks when you get a work visa for Canada?",
        "What examples show how others get a work visa for Canada?",
    )


def test_a_how_to_gets_steps_cost_timeline_mistakes_and_examples() -> None:
    plan = plan_questions("How do I start a vegetable garden on a balcony?", 5)
    assert plan.kind == "how_to"
    assert plan.questions == (
        "What are the steps to start a vegetable garden on a balcony?",
        "What do you need to start a vegetable garden on a balcony, and what does it cost?",
        "How long does it take to start a vegetable garden on a balcony?",
        "What are the common mistakes and risks when you start a vegetable garden on a balcony?",
        "What examples show how others start a vegetable garden on a balcony?",
    )


def test_a_decision_weighs_gains_cost_risks_and_payback() -> None:
    plan = plan_questions("Is solar power worth it for a house in Germany?", 5)
    assert plan.kind == "decision"
    assert plan.questions == (
        "What are the benefits of solar power for a house in Germany?",
        "What does solar power for a house in Germany cost, up front and over time?",
        "What are the risks and downsides of solar power for a house in Germany?",
        "How long does solar power for a house in Germany take to pay off?",
        "What are the alternatives to solar power for a house in Germany?",
    )
    should = plan_questions("Should I learn to code at 40?", 3)
    assert should.questions == (
        "What would I gain if I learn to code at 40?",
        "What would it cost to learn to code at 40?",
        "What are the risks if I learn to code at 40?",
    )


def test_a_topic_question_keeps_its_own_words_first() -> None:
    plan = plan_questions("What is the history of the Suez Canal?", 5)
    assert plan.kind == "topic"
    assert plan.topic == "the Suez Canal"
    assert plan.questions == (
        "What is the history of the Suez Canal?",
        "What are the key facts and figures about the Suez Canal?",
        "What are the main risks and open questions around the Suez Canal?",
        "Which real-world examples illustrate the Suez Canal?",
        "What is the outlook for the Suez Canal over the next few years?",
    )


def test_a_yes_or_no_question_asks_what_changes_the_answer() -> None:
    plan = plan_questions("Do I need a visa for Japan?", 3)
    assert plan.kind == "yes_no"
    assert plan.questions == (
        "Do I need a visa for Japan?",
        "What do official or expert sources say about whether I need a visa for Japan?",
        "What conditions or exceptions change whether I need a visa for Japan?",
    )


def test_the_plan_is_capped_unique_and_empty_for_no_words() -> None:
    assert len(plan_questions("Python vs Go vs Rust vs Java vs C#", 3).questions) == 3
    plan = plan_questions("How do I bake bread", 7)
    assert len(plan.questions) == len({q.casefold() for q in plan.questions}) == 7
    assert plan_questions("?!", 5).questions == ()


def test_the_plan_is_deterministic() -> None:
    query = "Pros and cons of electric cars in Norway"
    assert plan_questions(query, 7) == plan_questions(query, 7)


def test_a_model_plan_is_read_line_by_line_without_its_decoration() -> None:
    answer = (
        "Sure! Here are the sub-questions:\n\n"
        "1. What does a heat pump cost to install?\n"
        "2) **How much does it save a year?**\n"
        "- What grants are there\n"
        "* What does a heat pump cost to install?\n"
        "3. Noise.\n"
        "Q4: Which homes are unsuitable?\n"
        "I hope this helps.\n"
    )
    assert parse_questions(answer, 10) == [
        "What does a heat pump cost to install?",
        "How much does it save a year?",
        "What grants are there?",
        "Which homes are unsuitable?",
    ]
    assert parse_questions(answer, 2) == [
        "What does a heat pump cost to install?",
        "How much does it save a year?",
    ]
    assert parse_questions("An engineer who ships reliable, well-tested systems.", 5) == []


def test_progress_shows_the_start_of_a_sub_question_in_whole_words() -> None:
    assert short_question("What does it cost?") == "What does it cost"
    long = "What are the strengths and weaknesses of PostgreSQL for a small SaaS startup?"
    assert short_question(long) == "What are the strengths and weaknesses of"
    assert len(short_question(long)) <= 48


@pytest.mark.parametrize(
    ("question", "facet"),
    [
        ("How do PostgreSQL and MySQL compare on cost?", "comparison"),
        ("Which is the better choice for a startup, and under what conditions?", "choice"),
        ("What would it cost to learn to code at 40?", "cost"),
        ("What are the risks if we buy a home in Berlin?", "risks"),
        ("How long does it take to get a work visa for Canada?", "timeline"),
        ("Which real-world examples illustrate the Suez Canal?", "examples"),
        ("What is the history of the Suez Canal?", "background"),
        ("What is a heat pump?", "overview"),
    ],
)
def test_each_sub_question_has_a_facet_that_shapes_its_offline_answer(
    question: str, facet: str
) -> None:
    assert question_facet(question) == facet
    assert offline_answer(question).startswith("How to answer it: ")


def test_the_report_has_a_summary_a_section_per_sub_question_and_a_conclusion() -> None:
    questions = ["What does it cost?", "What are the risks?"]
    summary = offline_summary("Is solar worth it?", "decision", "solar", questions)
    assert summary.startswith(
        'This report looks at "Is solar worth it?" through 2 sub-questions: What does it '
        "cost; What are the risks. It weighs"
    )
    sections = [(q, "An answer.") for q in questions]
    report = render_report("Is solar worth it?", summary, sections, "Go ahead.")
    assert [line for line in report.splitlines() if line.startswith("#")] == [
        "# Research: Is solar worth it?",
        "## Summary",
        "## 1. What does it cost?",
        "## 2. What are the risks?",
        "## Conclusion",
    ]
