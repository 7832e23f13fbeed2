-- One change to a member's account (stored value, points, spend, experience), at most once per
-- reference. KEYS[1] account hash, KEYS[2] ledger list; both under the member's hash tag.
-- ARGV: 1 key prefix, 2 reference ('' = not deduplicated), 3 today (day number), 4 now (ms),
-- 5 kind (recharge, pay, earn, spend_points, claim, reward, adjust), 6 balance delta,
-- 7 points delta, 8 spend delta, 9 recharge delta, 10 experience delta, 11 monthly installment,
-- 12 months, 13 reward rule ('' none), 14 store, 15 per-store limit, 16 total limit.
-- Installments (分期返还) due by today are credited first. Returns {word, balance, points, spend,
-- recharged, experience, tier, joined}: word 'ok', 'duplicate' (same reference seen: nothing
-- changed), 'insufficient_balance', 'insufficient_points', 'over_limit' (balance or points
-- would pass 10^13) or 'limit'.
local acct, ledger, prefix = KEYS[1], KEYS[2], ARGV[1]
local today, now = tonumber(ARGV[3]), ARGV[4]
local function state(word)
  local a = redis.call('HMGET', acct, 'balance', 'points', 'spend', 'recharged', 'exp', 'tier',
    'joined')
  return {word, tonumber(a[1] or '0'), tonumber(a[2] or '0'), tonumber(a[3] or '0'),
    tonumber(a[4] or '0'), tonumber(a[5] or '0'), a[6] or '', a[7] or ''}
end
-- credit installments that fell due
local inst = redis.call('HGET', acct, 'inst')
if inst and inst ~= '' then
  local keep = {}
  for due, amount in string.gmatch(inst, '(%d+):(%d+)') do
    if tonumber(due) <= today then
      redis.call('HINCRBY', acct, 'balance', amount)
      redis.call('RPUSH', ledger, now .. '|installment|' .. amount .. '|0|due:' .. due)
    else
      keep[#keep + 1] = due .. ':' .. amount
    end
  end
  redis.call('HSET', acct, 'inst', table.concat(keep, ','))
end
local kind = ARGV[5]
if kind == 'read' then return state('ok') end
if ARGV[2] ~= '' then
  if redis.call('SET', prefix .. 'ref:' .. ARGV[2], 1, 'NX') == false then
    return state('duplicate')
  end
end
local function undo_ref() if ARGV[2] ~= '' then redis.call('DEL', prefix .. 'ref:' .. ARGV[2]) end end
local a = state('ok')
local db, dp = tonumber(ARGV[6]), tonumber(ARGV[7])
if a[2] + db < 0 then undo_ref(); return state('insufficient_balance') end
if a[3] + dp < 0 then undo_ref(); return state('insufficient_points') end
-- 10^13 keeps every sum exact in Lua's doubles and far inside ClickHouse's Int64
if a[2] + db > 1e13 or a[3] + dp > 1e13 then undo_ref(); return state('over_limit') end
if ARGV[13] ~= '' then
  local rule = prefix .. 'reward:' .. ARGV[13]
  local at_store = tonumber(redis.call('HGET', rule, ARGV[14]) or '0')
  local total = tonumber(redis.call('HGET', rule, '*') or '0')
  local per_store, total_limit = tonumber(ARGV[15]), tonumber(ARGV[16])
  if (per_store > 0 and at_store >= per_store) or (total_limit > 0 and total >= total_limit) then
    undo_ref(); return state('limit')
  end
  redis.call('HINCRBY', rule, ARGV[14], 1)
  redis.call('HINCRBY', rule, '*', 1)
end
redis.call('HINCRBY', acct, 'balance', db)
redis.call('HINCRBY', acct, 'points', dp)
redis.call('HINCRBY', acct, 'spend', ARGV[8])
redis.call('HINCRBY', acct, 'recharged', ARGV[9])
redis.call('HINCRBY', acct, 'exp', ARGV[10])
if redis.call('HEXISTS', acct, 'joined') == 0 then redis.call('HSET', acct, 'joined', today) end
local monthly, months = tonumber(ARGV[11]), tonumber(ARGV[12])
if monthly > 0 and months > 0 then
  local plan = {}
  local current = redis.call('HGET', acct, 'inst')
  if current and current ~= '' then plan[1] = current end
  for i = 1, months do plan[#plan + 1] = (today + 30 * i) .. ':' .. monthly end
  redis.call('HSET', acct, 'inst', table.concat(plan, ','))
end
redis.call('RPUSH', ledger, now .. '|' .. kind .. '|' .. db .. '|' .. dp .. '|' .. ARGV[2])
return state('ok')
