"""Parts of the Redis driver (:mod:`conveyor.drivers.redis`): its URL options, its Lua
scripts, the pub/sub listener that wakes idle workers and result waiters, and the
coalescer that turns concurrent dispatches into one write."""
