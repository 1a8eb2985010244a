"""The text engine behind the ``cv_tailoring`` job: pure, offline and deterministic.

The job's steps map onto it one to one::

    profile = load_profile(resume)                                   # load_profile
    analysis = analyze_posting(posting)                              # analyze_posting
    match = score_match(profile, analysis)
    cv = await tailor_cv(profile, analysis, match, writer)           # tailor_cv
    letter = await write_cover_letter(profile, analysis, match, writer)  # write_cover_letter
    preview = render_preview(cv, letter, match, analysis)            # render_preview
    result = tailoring_result(cv, letter, match, preview)

Every value passed between steps has ``to_dict()``/``from_dict()`` for checkpointing as a
protobuf Struct. Prose comes from a :class:`CvWriter`; :class:`LocalCvWriter` is the
template one, and whatever a writer returns is checked against the résumé.
"""

from __future__ import annotations

from resume.match import Match, evidenced_skills, score_match
from resume.posting import PostingAnalysis, Seniority, analyze_posting
from resume.profile import Education, Profile, Role, load_profile
from resume.render import render_preview, tailoring_result
from resume.tailor import (
    TailoredCv,
    WriterOutputError,
    tailor_cv,
    write_cover_letter,
)
from resume.vocabulary import (
    VOCABULARY,
    SkillMention,
    canonical_skill,
    count_skills,
    find_skills,
    iter_skill_mentions,
)
from resume.writer import CvWriter, LocalCvWriter

__all__ = [
    "VOCABULARY",
    "CvWriter",
    "Education",
    "LocalCvWriter",
    "Match",
    "PostingAnalysis",
    "Profile",
    "Role",
    "Seniority",
    "SkillMention",
    "TailoredCv",
    "WriterOutputError",
    "analyze_posting",
    "canonical_skill",
    "count_skills",
    "evidenced_skills",
    "find_skills",
    "iter_skill_mentions",
    "load_profile",
    "render_preview",
    "score_match",
    "tailor_cv",
    "tailoring_result",
    "write_cover_letter",
]
