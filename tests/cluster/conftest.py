# Redis for the cluster tests: a redis-server of the test's own (stoppable), or the machine's under a prefix.
from tests.limits.conftest import private_redis, redis_prefix, shared_redis  # noqa: F401
