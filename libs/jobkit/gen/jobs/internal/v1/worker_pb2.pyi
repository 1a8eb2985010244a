import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobSubmitted(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class StepTask(_message.Message):
    __slots__ = ("job_id", "job_type", "step", "attempt", "input", "checkpoints", "timeout", "artifact_prefix", "cursor", "step_token", "type_version")
    class CheckpointsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Struct
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    STEP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TYPE_VERSION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    job_type: str
    step: str
    attempt: int
    input: _struct_pb2.Struct
    checkpoints: _containers.MessageMap[str, _struct_pb2.Struct]
    timeout: _duration_pb2.Duration
    artifact_prefix: str
    cursor: _struct_pb2.Struct
    step_token: str
    type_version: int
    def __init__(self, job_id: _Optional[str] = ..., job_type: _Optional[str] = ..., step: _Optional[str] = ..., attempt: _Optional[int] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., checkpoints: _Optional[_Mapping[str, _struct_pb2.Struct]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., artifact_prefix: _Optional[str] = ..., cursor: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., step_token: _Optional[str] = ..., type_version: _Optional[int] = ...) -> None: ...

class StepProgress(_message.Message):
    __slots__ = ("percent", "phase", "partial_output")
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    percent: int
    phase: str
    partial_output: str
    def __init__(self, percent: _Optional[int] = ..., phase: _Optional[str] = ..., partial_output: _Optional[str] = ...) -> None: ...

class StepSucceeded(_message.Message):
    __slots__ = ("output",)
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    output: _struct_pb2.Struct
    def __init__(self, output: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StepFailed(_message.Message):
    __slots__ = ("code", "message", "retryable", "retry_after")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    retryable: bool
    retry_after: _duration_pb2.Duration
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StepHeartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StepCursor(_message.Message):
    __slots__ = ("cursor", "children")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    cursor: _struct_pb2.Struct
    children: _containers.RepeatedCompositeFieldContainer[ChildJob]
    def __init__(self, cursor: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., children: _Optional[_Iterable[_Union[ChildJob, _Mapping]]] = ...) -> None: ...

class StepInputRequired(_message.Message):
    __slots__ = ("prompt", "schema", "draft", "timeout")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    schema: _struct_pb2.Struct
    draft: _struct_pb2.Struct
    timeout: _duration_pb2.Duration
    def __init__(self, prompt: _Optional[str] = ..., schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., draft: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ChildJob(_message.Message):
    __slots__ = ("job_type", "input")
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    job_type: str
    input: _struct_pb2.Struct
    def __init__(self, job_type: _Optional[str] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StepReport(_message.Message):
    __slots__ = ("job_id", "step", "attempt", "progress", "succeeded", "failed", "heartbeat", "cursor", "input_required", "reported_at", "usage", "take_next", "last_progress")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    INPUT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TAKE_NEXT_FIELD_NUMBER: _ClassVar[int]
    LAST_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    step: str
    attempt: int
    progress: StepProgress
    succeeded: StepSucceeded
    failed: StepFailed
    heartbeat: StepHeartbeat
    cursor: StepCursor
    input_required: StepInputRequired
    reported_at: _timestamp_pb2.Timestamp
    usage: _containers.RepeatedCompositeFieldContainer[ModelUsage]
    take_next: bool
    last_progress: StepProgress
    def __init__(self, job_id: _Optional[str] = ..., step: _Optional[str] = ..., attempt: _Optional[int] = ..., progress: _Optional[_Union[StepProgress, _Mapping]] = ..., succeeded: _Optional[_Union[StepSucceeded, _Mapping]] = ..., failed: _Optional[_Union[StepFailed, _Mapping]] = ..., heartbeat: _Optional[_Union[StepHeartbeat, _Mapping]] = ..., cursor: _Optional[_Union[StepCursor, _Mapping]] = ..., input_required: _Optional[_Union[StepInputRequired, _Mapping]] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., usage: _Optional[_Iterable[_Union[ModelUsage, _Mapping]]] = ..., take_next: _Optional[bool] = ..., last_progress: _Optional[_Union[StepProgress, _Mapping]] = ...) -> None: ...

class ResultAnswer(_message.Message):
    __slots__ = ("next", "result_subject", "waiting")
    NEXT_FIELD_NUMBER: _ClassVar[int]
    RESULT_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    next: StepTask
    result_subject: str
    waiting: StepTask
    def __init__(self, next: _Optional[_Union[StepTask, _Mapping]] = ..., result_subject: _Optional[str] = ..., waiting: _Optional[_Union[StepTask, _Mapping]] = ...) -> None: ...

class ModelUsage(_message.Message):
    __slots__ = ("model", "prompt_tokens", "completion_tokens", "prompts")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    prompt_tokens: int
    completion_tokens: int
    prompts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., prompts: _Optional[_Iterable[str]] = ...) -> None: ...

class CancelStep(_message.Message):
    __slots__ = ("job_id", "step", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    step: str
    attempt: int
    def __init__(self, job_id: _Optional[str] = ..., step: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...
