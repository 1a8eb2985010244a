"""The steps of ``interview_prep``: the résumé and the posting through the résumé engine,
then one question per skill and the model's advice on preparing."""

from __future__ import annotations

from typing import Any

from jobtypes.interview_prep.spec import LOAD_RESUME, READ_POSTING, WRITE_QUESTIONS
from resume import analyze_posting, score_match
from resume.steps import load_resume, profile_of
from stepkit import ChatMessage, ChatProvider, Handler, Prose, StepContext, listing, system

#: Prompt id with its version; bump the version whenever the prompt's wording changes.
ADVICE_PROMPT = "interview_advice@1"


async def _read_posting(ctx: StepContext) -> dict[str, Any]:
    analysis = analyze_posting(ctx.input["job_posting"])
    match = score_match(profile_of(ctx, LOAD_RESUME), analysis)
    return {"analysis": analysis.to_dict(), "match": match.to_dict()}


def questions(posting: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """One question per skill the posting asks for, required ones first: the skills the
    résumé shows ask for evidence, the missing ones how the candidate would close the gap."""
    match = posting["match"]
    shown = set(match["matched_skills"]) | set(match["matched_nice_to_have"])
    analysis = posting["analysis"]
    skills = [*analysis["required_skills"], *analysis["nice_to_have_skills"]][:limit]
    return [
        {
            "skill": skill,
            "shown": skill in shown,
            "question": (
                f"Tell us about a time you used {skill}: what was the problem, and what did you do?"
                if skill in shown
                else f"This role uses {skill} every day. How would you get up to speed?"
            ),
        }
        for skill in skills
    ]


def render_report(role: str, asked: list[dict[str, Any]], advice: str) -> str:
    """The questions and the advice as Markdown, the page's preview."""
    lines = [f"# Interview prep: {role}", "", "## Questions", ""]
    lines += [
        f"{n}. **{q['skill']}**{'' if q['shown'] else ' (not on your résumé yet)'}: {q['question']}"
        for n, q in enumerate(asked, 1)
    ]
    return "\n".join([*lines, "", "## How to prepare", "", advice, ""])


def _write_questions(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        posting = ctx.checkpoint(READ_POSTING)
        asked = questions(dict(posting), int(ctx.input.get("questions", 5) or 5))
        role = f"{posting['analysis']['title']} at {posting['analysis']['company']}"
        shown = [q["skill"] for q in asked if q["shown"]]
        missing = [q["skill"] for q in asked if not q["shown"]]

        async def offline() -> str:
            return (
                f"For the {role} interview, prepare one story each for "
                f"{listing(shown)}, with the problem, what you did and the result in figures. "
                f"For {listing(missing)}, say what you have done that is closest and how you "
                "would learn the rest in your first weeks."
            )

        messages = (
            system("You coach a job applicant for an interview."),
            ChatMessage(
                "user",
                f"Role: {role}\nSkills the applicant has shown: {listing(shown)}\n"
                f"Skills the applicant lacks: {listing(missing)}\n"
                "In three or four sentences, advise how to prepare.",
            ),
        )
        advice = await Prose.for_step(provider, ctx).ask(
            ADVICE_PROMPT, messages, offline, max_tokens=300
        )
        report = render_report(role, asked, advice)
        return {"role": role, "questions": asked, "advice": advice, "report_markdown": report}

    return handler


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    return {
        LOAD_RESUME: load_resume,
        READ_POSTING: _read_posting,
        WRITE_QUESTIONS: _write_questions(provider),
    }
