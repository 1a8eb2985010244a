"""Shared infrastructure for the job system's services.

Config parsing, logging, errors, Postgres, NATS, the outbox, gRPC plumbing, auth, the
job-type catalogue and the generated stubs live here once; domain logic lives in each
service under ``services/``.
"""
