-- Gift card transfer (转赠), at most once per card. KEYS[1] template counters, KEYS[2] transfers.
-- ARGV: 1 key prefix, 2 op ('activate', 'start', 'cancel', 'accept'), 3 serial, 4 giver member id,
-- 5 receiver member id, 6 receiver hash (48-bit), 7 today (day number).
-- activate: 未激活 -> 已激活 (at the sale); start: 已激活 -> 转赠中; cancel: 转赠中 -> 已激活; accept: 转赠中 -> 已转赠 and a new card with the
-- remaining balance for the receiver (not transferable again). Returns {word, serial}.
local prefix, op, serial = ARGV[1], ARGV[2], tonumber(ARGV[3])
local rkey = prefix .. 'r:' .. string.format('%d', math.floor(serial / 128))
local field = serial % 128
local rec = redis.call('HGET', rkey, field)
if not rec then return {'not_found', 0} end
local st, camp, member, extra = string.match(rec, '^(%a)(%d+)|([^|]*)|?(.*)$')
if op ~= 'activate' and member ~= ARGV[4] then return {'not_holder', 0} end
if redis.call('HGET', KEYS[1], 'kind') ~= 'gift_card' then return {'not_a_gift_card', 0} end
local balance, transfers = string.match(extra, '^(%d+),(%d+)$')
if op == 'activate' then
  if st == 'a' then return {'ok', serial} end
  if st ~= 'i' then return {'not_inactive', 0} end
  redis.call('HSET', rkey, field, 'a' .. camp .. '|' .. member .. '|' .. extra)
  return {'ok', serial}
end
if op == 'start' then
  if st == 'g' then return {'ok', serial} end
  if st ~= 'a' then return {'not_active', 0} end
  if tonumber(transfers) > 0 then return {'already_transferred_once', 0} end
  redis.call('HSET', rkey, field, 'g' .. camp .. '|' .. member .. '|' .. extra)
  return {'ok', serial}
elseif op == 'cancel' then
  if st ~= 'g' then return {'not_transferring', 0} end
  redis.call('HSET', rkey, field, 'a' .. camp .. '|' .. member .. '|' .. extra)
  return {'ok', serial}
end
-- accept
if st == 't' then
  local done = redis.call('HGET', KEYS[2], serial)
  if done and string.match(done, '^%d+:(.*)$') == ARGV[5] then
    return {'ok', tonumber(string.match(done, '^(%d+):'))}
  end
  return {'already_transferred', 0}
end
if st ~= 'g' then return {'not_transferring', 0} end
if ARGV[5] == member then return {'same_member', 0} end
local m = redis.call('HMGET', KEYS[1], 'seq', 'mbuckets', 'lastday')
local seq, nb, day = tonumber(m[1]) + 1, tonumber(m[2]), tonumber(ARGV[7])
if tostring(day) ~= m[3] then
  redis.call('HSET', KEYS[1], 'lastday', day)
  redis.call('APPEND', prefix .. 'days', seq .. ':' .. day .. ';')
end
redis.call('HSET', KEYS[1], 'seq', seq)
redis.call('HSET', rkey, field, 't' .. camp .. '|' .. member .. '|' .. extra)
redis.call('HSET', prefix .. 'r:' .. string.format('%d', math.floor(seq / 128)), seq % 128,
  'a' .. camp .. '|' .. ARGV[5] .. '|' .. balance .. ',1')
local h = tonumber(ARGV[6])
local mkey = prefix .. 'm:' .. string.format('%d', h % nb)
local mfield = string.format('%d', math.floor(h / 4294967296) % 8192)
local list = redis.call('HGET', mkey, mfield)
if list then list = list .. ',' .. seq else list = tostring(seq) end
redis.call('HSET', mkey, mfield, list)
redis.call('HSET', KEYS[2], serial, seq .. ':' .. ARGV[5])
return {'ok', seq}
