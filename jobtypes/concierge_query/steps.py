"""The steps of ``concierge_query``.

Steps (see ``spec.py``)::

    understand  the question classified and read (``insight.concierge.understand``): its
                kind, the day, time, party, places and topics it names, and the parts of
                the trip's context that matter to that kind
    answer      the answer through the model; with ``local``, the steps for that kind of
                request filled in from the question and the trip, and what is still needed
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from insight.concierge import (
    KIND_LABELS,
    Understanding,
    missing_details,
    offline_answer,
    trip_facts,
    understand,
)
from jobtypes.concierge_query.spec import ANSWER, UNDERSTAND
from stepkit import ChatMessage, ChatProvider, Handler, Prose, StepContext, system

#: Prompt id with its version; bump the version whenever the prompt's wording changes.
ANSWER_PROMPT = "concierge_answer@1"


def _question(ctx: StepContext) -> str:
    return " ".join(str(ctx.input["question"]).split())


async def _understand(ctx: StepContext) -> dict[str, Any]:
    context = ctx.input.get("context")
    understood = understand(_question(ctx), context if isinstance(context, Mapping) else {})
    return {"understanding": understood.to_dict()}


def understanding_of(data: Mapping[str, Any]) -> Understanding:
    """The :class:`Understanding` the ``understand`` step checkpointed."""
    return Understanding(
        kind=data["kind"],
        also=tuple(data["also"]),
        scores={str(k): int(v) for k, v in dict(data["scores"]).items()},
        day=str(data["day"]),
        time=str(data["time"]),
        party_size=int(data["party_size"]),
        with_children=bool(data["with_children"]),
        places=tuple(str(p) for p in data["places"]),
        origin=str(data.get("origin") or ""),
        goal=str(data.get("goal") or ""),
        topics=tuple(str(t) for t in data["topics"]),
        context=dict(data["context"]),
    )


def answer_messages(question: str, understood: Understanding) -> tuple[ChatMessage, ...]:
    facts = "\n".join(trip_facts(understood))
    return (
        system(
            "You are a hotel concierge answering a traveller. Give practical, specific help "
            "in at most 150 words; where you are not sure of a fact such as opening hours or "
            "a price, say how to check it rather than guessing."
        ),
        ChatMessage("user", f"Question: {question}\n\nWhat we know:\n{facts}"),
    )


def _answer(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        question = _question(ctx)
        understood = understanding_of(ctx.checkpoint(UNDERSTAND)["understanding"])

        async def offline() -> str:
            return offline_answer(understood)

        answer = await Prose.for_step(provider, ctx).ask(
            ANSWER_PROMPT, answer_messages(question, understood), offline, max_tokens=400
        )
        # The last step's output is the job's result.
        return {
            "question_kind": understood.kind,
            "kind_label": KIND_LABELS[understood.kind],
            "also_about": list(understood.also),
            "answer": answer,
            "details": {
                "day": understood.day,
                "time": understood.time,
                "party_size": understood.party_size,
                "places": list(understood.places),
                "from": understood.origin,
                "to": understood.goal,
                "topics": list(understood.topics),
            },
            "context_used": dict(understood.context),
            "follow_up": missing_details(understood),
        }

    return handler


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    return {UNDERSTAND: _understand, ANSWER: _answer(provider)}
