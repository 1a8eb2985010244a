from jobkit.gen.jobs.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CommittedEvents(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_jobs_pb2.JobEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_jobs_pb2.JobEvent, _Mapping]]] = ...) -> None: ...

class WebhookDue(_message.Message):
    __slots__ = ("webhook_id", "job_id", "sequence")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    job_id: str
    sequence: int
    def __init__(self, webhook_id: _Optional[str] = ..., job_id: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...
