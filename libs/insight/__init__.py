"""Research and advice, the pure parts: splitting a research query into sub-questions
(:mod:`insight.research`), reading a traveller's question to a concierge
(:mod:`insight.concierge`), and a career field's market held against a person's skills
(:mod:`insight.career`, on the résumé engine's skill vocabulary).

No model and no I/O here: the ``research``, ``concierge_query`` and ``career_insights``
job types call these for their deterministic steps and for what the ``local`` provider
answers, and ask a model only through ``stepkit.Prose``.
"""
