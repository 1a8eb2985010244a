"""The steps of ``career_insights``.

Steps (see ``spec.py``)::

    read_market   the field (``insight.career.resolve_domain``: named, or pointed at by the
                  skills or the current role), its market view and its ladder of roles,
                  with the current role placed on it
    match_skills  the user's skills (in the résumé vocabulary's names) against the field's
                  in-demand and rising skills: matched, gaps, transferable; next steps
    advise        the advice through the model, and the result with a Markdown report

Everything but the advice is deterministic; with the ``local`` provider so is the advice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from insight.career import (
    DOMAINS,
    domain_named,
    match_skills,
    next_steps,
    place_on_ladder,
    read_market,
    resolve_domain,
)
from jobtypes.career_insights.spec import ADVISE, MATCH_SKILLS, READ_MARKET
from stepkit import (
    ChatMessage,
    ChatProvider,
    Handler,
    PermanentStepError,
    Prose,
    StepContext,
    listing,
    system,
)

#: Prompt id with its version; bump the version whenever the prompt's wording changes.
ADVICE_PROMPT = "career_advice@1"

_ARROW = " \u2192 "


def _skills(ctx: StepContext) -> list[str]:
    return [s for s in ctx.input.get("skills") or () if isinstance(s, str) and s.strip()]


def _current_role(ctx: StepContext) -> str:
    return " ".join(str(ctx.input.get("current_role") or "").split())


async def _read_market(ctx: StepContext) -> dict[str, Any]:
    current_role = _current_role(ctx)
    domain = resolve_domain(str(ctx.input["domain"]), current_role, _skills(ctx))
    if domain is None:
        # The message names the known fields, never the words the user wrote.
        raise PermanentStepError(
            "UNKNOWN_DOMAIN",
            "no market map for that field; name one of: " + ", ".join(d.name for d in DOMAINS),
        )
    return {"market": read_market(domain), "roles": place_on_ladder(domain, current_role)}


async def _match_skills(ctx: StepContext) -> dict[str, Any]:
    market = ctx.checkpoint(READ_MARKET)
    domain = domain_named(str(market["market"]["domain"]))
    match = match_skills(domain, _skills(ctx))
    steps = next_steps(market["market"], match, market["roles"])
    return {"match": match, "next_steps": steps}


def _either(items: Sequence[str]) -> str:
    """``["a", "b", "c"]`` as "a, b or c"."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def advice_template(
    market: Mapping[str, Any], roles: Mapping[str, Any], match: Mapping[str, Any]
) -> str:
    """The advice with no model: where the user stands in the field, and what to do first."""
    domain = str(market["domain"])
    matched = [str(m["with"]) for m in match["matched"]]
    gaps = [str(g["skill"]) for g in match["gaps"]]
    total = len(matched) + len(gaps)
    if roles["changing_fields"]:
        origin = roles["from_domain"] or f"your work as a {roles['current_role']}"
        opening = (
            f"Moving from {origin} into {domain}, you already bring "
            f"{len(matched)} of the {total} skills its employers ask for most"
        )
    elif roles["current_role"]:
        opening = (
            f"As a {roles['current_role']}, you show {len(matched)} of the {total} skills "
            f"{domain} employers ask for most"
        )
    else:
        opening = f"You show {len(matched)} of the {total} skills {domain} employers ask for most"
    opening += f": {listing(matched)}." if matched else "."
    paragraphs = [opening]
    if gaps:
        paragraphs.append(
            f"Close the gaps in the order employers rank them: {listing(gaps[:3])} first. "
            "A small project that uses them together, with a write-up of what it does and "
            "how well, is worth more than a course certificate."
        )
    else:
        paragraphs.append(
            "Nothing in demand is missing: make each skill visible with a recent result."
        )
    if match["emerging_gaps"]:
        paragraphs.append(f"To stand out, add a rising skill such as {match['emerging_gaps'][0]}.")
    targets = list(roles["next_roles"])
    if targets:
        paragraphs.append(f"The role to aim for next: {_either(targets)}.")
    return "\n\n".join(paragraphs)


def advice_messages(
    market: Mapping[str, Any],
    roles: Mapping[str, Any],
    match: Mapping[str, Any],
    steps: Sequence[str],
) -> tuple[ChatMessage, ...]:
    facts = [
        f"Field: {market['domain']}",
        f"Market: {market['summary']}",
        f"Rising skills: {listing(list(market['emerging']))}",
        f"Current role: {roles['current_role'] or '(not given)'}",
        "Changing fields: "
        + (f"yes, from {roles['from_domain']}" if roles["changing_fields"] else "no"),
        f"Next roles: {listing(list(roles['next_roles']))}",
        f"In-demand skills the user has: {listing([str(m['skill']) for m in match['matched']])}",
        f"In-demand skills missing: {listing([str(g['skill']) for g in match['gaps']])}",
        f"Coverage: {int(match['coverage'])}/100",
        "Next steps:",
        *(f"- {step}" for step in steps),
    ]
    return (
        system("You are a career coach giving practical, honest advice."),
        ChatMessage(
            "user",
            "Write career advice for the user, in the second person, in at most 200 words: "
            "where they stand in the field, what to learn first and why, and the role to aim "
            "for. Never say they have a skill listed as missing.\n\n" + "\n".join(facts),
        ),
    )


def render_report(
    market: Mapping[str, Any],
    roles: Mapping[str, Any],
    match: Mapping[str, Any],
    steps: Sequence[str],
    advice: str,
) -> str:
    """The insights as Markdown: market, skills, roles, next steps, advice."""
    lines = [f"# Career insights: {market['domain']}", "", "## The market", ""]
    lines += [str(market["summary"]), ""]
    lines += ["| rank | skill in demand | you |", "|---|---|---|"]
    met = {int(m["rank"]): str(m["with"]) for m in match["matched"]}
    for skill in market["in_demand"]:
        rank = int(skill["rank"])
        have = f"yes ({met[rank]})" if rank in met else "not yet"
        lines.append(f"| {rank} | {skill['skill']} | {have} |")
    lines += ["", f"Rising: {listing(list(market['emerging']))}.", ""]
    lines += ["## Your skills", "", f"**Coverage:** {int(match['coverage'])}/100", ""]
    if match["transferable"]:
        carried = [
            str(t["skill"])
            + (f" (wanted in {listing(list(t['wanted_in']))})" if t["wanted_in"] else "")
            for t in match["transferable"]
        ]
        lines += [f"Also on your list: {'; '.join(carried)}.", ""]
    lines += ["## Roles", "", _ARROW.join(roles["ladder"]), ""]
    if roles["management"]:
        lines += [f"Leading people: {_ARROW.join(roles['management'])}", ""]
    if roles["next_roles"]:
        lines += [f"**Next:** {_either(list(roles['next_roles']))}", ""]
    lines += ["## Next steps", ""]
    lines += [f"{n}. {step}" for n, step in enumerate(steps, 1)]
    lines += ["", "## Advice", "", advice, ""]
    return "\n".join(lines)


def _advise(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        read, matched = ctx.checkpoint(READ_MARKET), ctx.checkpoint(MATCH_SKILLS)
        market, roles = dict(read["market"]), dict(read["roles"])
        match, steps = dict(matched["match"]), [str(s) for s in matched["next_steps"]]

        async def offline() -> str:
            return advice_template(market, roles, match)

        advice = await Prose.for_step(provider, ctx).ask(
            ADVICE_PROMPT, advice_messages(market, roles, match, steps), offline, max_tokens=500
        )
        # The last step's output is the job's result.
        return {
            "domain": market["domain"],
            "market": market,
            "roles": roles,
            "skills": {
                "coverage": int(match["coverage"]),
                "matched": [str(m["skill"]) for m in match["matched"]],
                "gaps": [str(g["skill"]) for g in match["gaps"]],
                "emerging_matched": list(match["emerging_matched"]),
                "emerging_gaps": list(match["emerging_gaps"]),
                "transferable": [str(t["skill"]) for t in match["transferable"]],
            },
            "next_steps": steps,
            "advice": advice,
            "report_markdown": render_report(market, roles, match, steps, advice),
        }

    return handler


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    return {
        READ_MARKET: _read_market,
        MATCH_SKILLS: _match_skills,
        ADVISE: _advise(provider),
    }
