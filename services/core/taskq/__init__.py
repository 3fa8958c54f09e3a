"""taskq core: the job model, the task contract, Redis keys and the atomic Lua scripts.

Both services import this package and nothing else knows a Redis key. Start at ``Taskq`` (queue.py),
over the command layer (commands/).
"""

from taskq.client import Client
from taskq.config import QueueConfig
from taskq.context import JobContext
from taskq.errors import (
    BadMessage,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    NonRetryableError,
    PayloadTooLarge,
    QueueFull,
    QueueNotDeclared,
    RedisFull,
    RedisUnavailable,
    ScriptCode,
    StaleLease,
    TaskqError,
    UnknownTask,
)
from taskq.health import RedisHealth, check_redis
from taskq.keys import GlobalKeys, QueueKeys, validate_queue_name
from taskq.models import (
    SCHEMA_VERSION,
    Ack,
    ClaimedJob,
    DeadReason,
    Job,
    JobError,
    JobPayload,
    JobStatus,
    Progress,
    QueueStats,
    WorkerInfo,
    new_job_id,
)
from taskq.queue import Taskq, fingerprint_of
from taskq.redis_client import connect
from taskq.registry import TaskLoadError, TaskRegistry
from taskq.results import ClaimBatch, DeadPage, EncodedJob, Enqueued, EnqueueRequest, ReapResult
from taskq.settings import CoreSettings
from taskq.sync import SyncTaskq, connect_sync
from taskq.sync_client import SyncClient
from taskq.tasks import Task, TaskArgs, TaskDefinitionError, Tasks
from taskq.waiter import Waiter
from taskq.wire import SyncWire, Wire

__all__ = [
    "SCHEMA_VERSION",
    "Ack",
    "BadMessage",
    "ClaimBatch",
    "ClaimedJob",
    "Client",
    "CoreSettings",
    "DeadPage",
    "DeadReason",
    "EncodedJob",
    "EnqueueRequest",
    "Enqueued",
    "GlobalKeys",
    "IdempotencyConflict",
    "InvalidTransition",
    "Job",
    "JobContext",
    "JobError",
    "JobNotFound",
    "JobPayload",
    "JobStatus",
    "NonRetryableError",
    "PayloadTooLarge",
    "Progress",
    "QueueConfig",
    "QueueFull",
    "QueueKeys",
    "QueueNotDeclared",
    "QueueStats",
    "ReapResult",
    "RedisFull",
    "RedisHealth",
    "RedisUnavailable",
    "ScriptCode",
    "StaleLease",
    "SyncClient",
    "SyncTaskq",
    "SyncWire",
    "Task",
    "TaskArgs",
    "TaskDefinitionError",
    "TaskLoadError",
    "TaskRegistry",
    "Taskq",
    "TaskqError",
    "Tasks",
    "UnknownTask",
    "Waiter",
    "Wire",
    "WorkerInfo",
    "check_redis",
    "connect",
    "connect_sync",
    "fingerprint_of",
    "new_job_id",
    "validate_queue_name",
]
