"""The steps of ``research``.

Steps (see ``spec.py``)::

    plan         the query split into sub-questions: the model proposes them (parsed, capped,
                 topped up from the local planner when it gives too few); with ``local``,
                 the planner of ``insight.research`` alone
    investigate  one answer per sub-question, in sequence, each announced as a progress
                 phase ("Researching 2 of 5: <sub-question>...")
    write        the summary and the conclusion through the model, and the report: Markdown
                 and structured sections

Every model call goes through ``Prose``, one prompt per purpose, versioned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from insight.research import (
    Kind,
    offline_answer,
    offline_conclusion,
    offline_summary,
    parse_questions,
    plan_questions,
    question_count,
    question_facet,
    render_report,
    short_question,
)
from jobtypes.research.spec import INVESTIGATE, PLAN, WRITE
from stepkit import (
    ChatMessage,
    ChatProvider,
    Handler,
    PermanentStepError,
    Prose,
    StepContext,
    system,
)

#: Prompt ids with their versions; bump a version whenever its prompt's wording changes.
PLAN_PROMPT = "research_plan@1"
ANSWER_PROMPT = "research_answer@1"
SUMMARY_PROMPT = "research_summary@1"
CONCLUSION_PROMPT = "research_conclusion@1"

#: Fewer usable sub-questions than this from the model, and the local planner's are used.
MIN_PROPOSED = 2


def _query(ctx: StepContext) -> str:
    return " ".join(str(ctx.input["query"]).split())


def plan_messages(query: str, count: int) -> tuple[ChatMessage, ...]:
    return (
        system("You plan a piece of research by splitting a question into sub-questions."),
        ChatMessage(
            "user",
            f"Question: {query}\n\nWrite exactly {count} sub-questions that together answer "
            "it: one for each option or item the question names, then the cost, the risks, "
            "the timeline and real examples where they matter. One sub-question per line, "
            "numbered, each ending with a question mark, and nothing else.",
        ),
    )


def merge_plan(proposed: Sequence[str], planned: Sequence[str], count: int) -> list[str]:
    """The model's sub-questions, topped up with the planner's up to ``count``; the
    planner's alone when the model proposed fewer than :data:`MIN_PROPOSED`."""
    if len(proposed) < min(MIN_PROPOSED, count):
        return list(planned[:count])
    seen = {q.casefold() for q in proposed}
    extra = [q for q in planned if q.casefold() not in seen]
    return [*proposed, *extra][:count]


def _plan(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        query = _query(ctx)
        count = question_count(ctx.input.get("depth"))
        planned = plan_questions(query, count)
        if not planned.questions:
            # Only punctuation, say: the schema lets it through, no retry mends it.
            raise PermanentStepError("EMPTY_QUERY", "the query has no words to research")

        async def offline() -> str:
            return "\n".join(f"{n}. {q}" for n, q in enumerate(planned.questions, 1))

        answer = await Prose.for_step(provider, ctx).ask(
            PLAN_PROMPT, plan_messages(query, count), offline, max_tokens=80 * count
        )
        proposed = parse_questions(answer, count)
        questions = merge_plan(proposed, planned.questions, count)
        return {
            "query_kind": planned.kind,
            "topic": planned.topic,
            "sub_questions": questions,
            "proposed": len([q for q in questions if q in proposed]),
        }

    return handler


def answer_messages(query: str, question: str, number: int, total: int) -> tuple[ChatMessage, ...]:
    return (
        system("You are a careful researcher answering one part of a larger question."),
        ChatMessage(
            "user",
            f"The whole question: {query}\nSub-question {number} of {total}: {question}\n\n"
            "Answer the sub-question in one paragraph of at most 150 words: the main points, "
            "what they depend on, and what to check. Say so where the answer is uncertain.",
        ),
    )


def _investigate(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        query = _query(ctx)
        questions = [str(q) for q in ctx.checkpoint(PLAN)["sub_questions"]]
        total = len(questions)
        prose = Prose.for_step(provider, ctx)
        findings: list[dict[str, Any]] = []
        # In sequence for now: parallel steps will run each sub-question as its own step.
        for number, question in enumerate(questions, 1):
            await ctx.report_progress(
                (number - 1) * 100 // total,
                f"Researching {number} of {total}: {short_question(question)}...",
            )

            async def offline(question: str = question) -> str:
                return offline_answer(question)

            answer = await prose.ask(
                ANSWER_PROMPT,
                answer_messages(query, question, number, total),
                offline,
                max_tokens=400,
            )
            findings.append(
                {"question": question, "facet": question_facet(question), "answer": answer}
            )
        return {"findings": findings}

    return handler


def _findings_text(findings: Sequence[Mapping[str, Any]]) -> str:
    return "\n\n".join(f"{n}. {f['question']}\n{f['answer']}" for n, f in enumerate(findings, 1))


def summary_messages(query: str, findings: Sequence[Mapping[str, Any]]) -> tuple[ChatMessage, ...]:
    return (
        system("You write the summary of a research report."),
        ChatMessage(
            "user",
            f"Question: {query}\n\nFindings, by sub-question:\n\n{_findings_text(findings)}\n\n"
            "Summarise what the findings say about the question in at most 120 words.",
        ),
    )


def conclusion_messages(
    query: str, findings: Sequence[Mapping[str, Any]]
) -> tuple[ChatMessage, ...]:
    return (
        system("You write the conclusion of a research report."),
        ChatMessage(
            "user",
            f"Question: {query}\n\nFindings, by sub-question:\n\n{_findings_text(findings)}\n\n"
            "In at most 100 words, answer the question as far as the findings allow and say "
            "what the reader should do or check next.",
        ),
    )


def _write(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        query = _query(ctx)
        plan = ctx.checkpoint(PLAN)
        kind: Kind = plan["query_kind"]
        topic = str(plan["topic"])
        findings = [dict(f) for f in ctx.checkpoint(INVESTIGATE)["findings"]]
        questions = [str(f["question"]) for f in findings]
        prose = Prose.for_step(provider, ctx)

        async def offline_summary_text() -> str:
            return offline_summary(query, kind, topic, questions)

        async def offline_conclusion_text() -> str:
            return offline_conclusion(kind, topic)

        summary = await prose.ask(
            SUMMARY_PROMPT, summary_messages(query, findings), offline_summary_text, 300
        )
        await ctx.report_progress(50, "Writing the conclusion...")
        conclusion = await prose.ask(
            CONCLUSION_PROMPT, conclusion_messages(query, findings), offline_conclusion_text, 250
        )
        sections = [
            {
                "heading": f"{n}. {f['question']}",
                "question": str(f["question"]),
                "facet": str(f["facet"]),
                "body": str(f["answer"]),
            }
            for n, f in enumerate(findings, 1)
        ]
        report = render_report(
            query, summary, [(s["question"], s["body"]) for s in sections], conclusion
        )
        # The last step's output is the job's result.
        return {
            "query": query,
            "query_kind": kind,
            "sub_questions": questions,
            "summary": summary,
            "sections": sections,
            "conclusion": conclusion,
            "report_markdown": report,
        }

    return handler


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    return {
        PLAN: _plan(provider),
        INVESTIGATE: _investigate(provider),
        WRITE: _write(provider),
    }
