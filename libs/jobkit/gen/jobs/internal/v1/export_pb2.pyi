from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ExportJobsRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ExportJobsResponse(_message.Message):
    __slots__ = ("total_jobs", "data", "jobs_done")
    TOTAL_JOBS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    JOBS_DONE_FIELD_NUMBER: _ClassVar[int]
    total_jobs: int
    data: bytes
    jobs_done: int
    def __init__(self, total_jobs: _Optional[int] = ..., data: _Optional[bytes] = ..., jobs_done: _Optional[int] = ...) -> None: ...
