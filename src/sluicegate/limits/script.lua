-- sluicegate usage limits: one request's checks, tested and applied atomically (all or nothing).
-- KEYS: 3 per check (rate: log zset, weights hash, running total | budget: state hash, reservation zset,
--       amounts hash). A token rate limit keeps its window's total beside the log, and a budget the total of
--       its reservations in flight in its state hash ('reserved'), so a check costs O(log n + entries that
--       leave), not O(entries in the window or reservations in flight).
-- ARGV: op ('admit' | 'settle'), rid, ttl_ms, now_ms override ('' = Redis's TIME), then 5 per check:
--       kind ('r' requests, 't' tokens rate, 'b' budget), limit, amount ('' = nothing to settle),
--       window_ms (rate) or periodic reset ('daily' | 'weekly' | 'monthly' | ''), alert threshold ('' = none)
-- admit  → {failed index (0 = admitted), now_ms, taken_1, oldest_1, taken_2, oldest_2, ...}
-- settle → {now_ms, alert_1, ...}: alert_i is the budget's usage when this settle crossed its threshold

local function fdiv(a, b) return math.floor(a / b) end

local function period_id(now, reset)
  local days = fdiv(now, 86400000)
  if reset == 'daily' then return days end
  if reset == 'weekly' then return fdiv(days + 3, 7) end
  if reset == 'monthly' then
    local z = days + 719468
    local era = fdiv(z, 146097)
    local doe = z - era * 146097
    local yoe = fdiv(doe - fdiv(doe, 1460) + fdiv(doe, 36524) - fdiv(doe, 146096), 365)
    local doy = doe - (365 * yoe + fdiv(yoe, 4) - fdiv(yoe, 100))
    local mp = fdiv(5 * doy + 2, 153)
    local month = mp < 10 and mp + 3 or mp - 9
    local year = yoe + era * 400 + (month <= 2 and 1 or 0)
    return year * 12 + month - 1
  end
  return 0
end

local now
if ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + fdiv(tonumber(t[2]), 1000)
end
local op, rid, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local n = fdiv(#KEYS, 3)

local function sum_values(hash)
  local total = 0
  for _, v in ipairs(redis.call('HVALS', hash)) do total = total + tonumber(v) end
  return total
end

-- Drop the entries of zset scored up to `upto`, with their amounts in hash; the sum of those amounts.
local function drop(zset, hash, upto)
  local old = redis.call('ZRANGEBYSCORE', zset, '-inf', upto)
  local gone = 0
  if #old > 0 then
    for i = 1, #old, 1000 do
      local chunk = {unpack(old, i, math.min(i + 999, #old))}
      for _, v in ipairs(redis.call('HMGET', hash, unpack(chunk))) do gone = gone + (tonumber(v) or 0) end
      redis.call('HDEL', hash, unpack(chunk))
    end
    redis.call('ZREMRANGEBYSCORE', zset, '-inf', upto)
  end
  return gone
end

-- A budget's reservations in flight, in total, once the expired ones are dropped. The total is kept in the
-- state hash by admit and settle; it is summed from the amounts once when the state has none (a budget
-- reset by hand deletes its state; a budget from before the total was kept), and starts again from 0 when
-- nothing is in flight (no rounding drift carried over; reservations that all expired with their keys).
local function reserved(state, zset, hash)
  local gone = drop(zset, hash, now)
  local total = tonumber(redis.call('HGET', state, 'reserved'))
  if redis.call('ZCARD', zset) == 0 then
    if total ~= 0 then redis.call('HSET', state, 'reserved', 0) end
    return 0
  end
  if total == nil then
    total = sum_values(hash)
    redis.call('HSET', state, 'reserved', total)
  elseif gone ~= 0 then
    total = tonumber(redis.call('HINCRBYFLOAT', state, 'reserved', -gone))
  end
  return math.max(total, 0)
end

local function budget_used(state, reset)
  local st = redis.call('HMGET', state, 'period', 'used', 'alerted')
  local p = period_id(now, reset)
  if tonumber(st[1]) == p then return p, tonumber(st[2]) or 0, st[3] end
  redis.call('HSET', state, 'period', p, 'used', 0, 'alerted', '')
  return p, 0, ''
end

if op == 'admit' then
  local out = {0, now}
  local failed = 0
  for i = 1, n do
    local k1, k2, k3 = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
    local a = 4 + 5 * (i - 1)
    local kind, limit, amount = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local taken, oldest = 0, now
    if kind == 'b' then
      local _, used = budget_used(k1, ARGV[a + 4])
      taken = used + reserved(k1, k2, k3)
    else
      local window = tonumber(ARGV[a + 4])
      if kind == 't' then
        local old = redis.call('ZRANGEBYSCORE', k1, '-inf', now - window)
        if #old > 0 then
          local gone = 0
          for j = 1, #old, 1000 do
            local chunk = {unpack(old, j, math.min(j + 999, #old))}
            for _, v in ipairs(redis.call('HMGET', k2, unpack(chunk))) do gone = gone + (tonumber(v) or 0) end
            redis.call('HDEL', k2, unpack(chunk))
          end
          redis.call('ZREMRANGEBYSCORE', k1, '-inf', now - window)
          redis.call('INCRBYFLOAT', k3, -gone)
        end
        taken = tonumber(redis.call('GET', k3)) or 0
        if redis.call('ZCARD', k1) == 0 then
          redis.call('DEL', k3)  -- an empty window: no rounding drift carried over
          taken = 0
        end
      else
        redis.call('ZREMRANGEBYSCORE', k1, '-inf', now - window)
        taken = redis.call('ZCARD', k1)
      end
      local first = redis.call('ZRANGE', k1, 0, 0, 'WITHSCORES')
      if #first > 0 then oldest = tonumber(first[2]) end
    end
    out[#out + 1] = tostring(taken)
    out[#out + 1] = oldest
    -- over, as checks.over says: beyond the limit by more than a float's rounding (0.1 + 0.2 fits 0.3)
    if failed == 0 and taken + amount - limit > 1e-9 * math.max(1, math.abs(limit)) then failed = i end
  end
  out[1] = failed
  if failed > 0 then return out end
  for i = 1, n do
    local k1, k2, k3 = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
    local a = 4 + 5 * (i - 1)
    local kind, amount = ARGV[a + 1], ARGV[a + 3]
    if kind == 'b' then
      -- a retried admission (its first reply lost) replaces its own reservation instead of adding a second
      local before = tonumber(redis.call('HGET', k3, rid)) or 0
      redis.call('ZADD', k2, now + ttl, rid)
      redis.call('HSET', k3, rid, amount)
      redis.call('HINCRBYFLOAT', k1, 'reserved', tonumber(amount) - before)
      redis.call('PEXPIRE', k2, ttl)
      redis.call('PEXPIRE', k3, ttl)
    else
      local window = tonumber(ARGV[a + 4])
      redis.call('ZADD', k1, now, rid)
      redis.call('PEXPIRE', k1, window)
      if kind == 't' then
        -- a retried admission (its first reply lost) replaces its own entry instead of adding a second
        local before = tonumber(redis.call('HGET', k2, rid)) or 0
        redis.call('HSET', k2, rid, amount)
        redis.call('INCRBYFLOAT', k3, tonumber(amount) - before)
        redis.call('PEXPIRE', k2, window)
        redis.call('PEXPIRE', k3, window)
      end
    end
  end
  return out
end

-- settle: replace each reservation with the actual usage
local out = {now}
for i = 1, n do
  local k1, k2, k3 = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local a = 4 + 5 * (i - 1)
  local kind, amount, alert = ARGV[a + 1], ARGV[a + 3], ARGV[a + 5]
  local crossed = ''
  if amount ~= '' and kind == 't' then
    if redis.call('ZSCORE', k1, rid) then
      local before = tonumber(redis.call('HGET', k2, rid)) or 0
      redis.call('HSET', k2, rid, amount)
      redis.call('INCRBYFLOAT', k3, tonumber(amount) - before)
    end
  elseif amount ~= '' and kind == 'b' then
    local held = tonumber(redis.call('HGET', k3, rid))
    redis.call('ZREM', k2, rid)
    if held ~= nil then
      redis.call('HDEL', k3, rid)
      -- with no total kept (reset by hand meanwhile) the next admission sums the amounts left
      if redis.call('HEXISTS', k1, 'reserved') == 1 then redis.call('HINCRBYFLOAT', k1, 'reserved', -held) end
    end
    local p, _, alerted = budget_used(k1, ARGV[a + 4])
    local used = tonumber(redis.call('HINCRBYFLOAT', k1, 'used', amount))
    if alert ~= '' and used >= tonumber(alert) and alerted ~= tostring(p) then
      redis.call('HSET', k1, 'alerted', p)
      crossed = tostring(used)
    end
  end
  out[#out + 1] = crossed
end
return out
