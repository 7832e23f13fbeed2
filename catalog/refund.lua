-- Return the use of a redemption (返还) when its order is cancelled. KEYS[1] template counters.
-- ARGV: 1 key prefix, 2 redemption number, 3 store the request acts for ('' any).
-- Returns {word, member, serial, amount, discount, spent, campaign id, store}: word 'ok', 'already_refunded',
-- 'not_found', 'wrong_store' or 'transferred'. A second refund changes nothing.
local prefix, n = ARGV[1], ARGV[2]
local rdkey = prefix .. 'rd:' .. n
local rd = redis.call('HMGET', rdkey, 'serial', 'member', 'store', 'amount', 'discount', 'spent',
  'day', 'state')
if not rd[1] then return {'not_found'} end
local serial = tonumber(rd[1])
local answer = {'ok', rd[2], rd[1], rd[4], rd[5], rd[6], '', rd[3]}
if ARGV[3] ~= '' and ARGV[3] ~= rd[3] then answer[1] = 'wrong_store'; return answer end
if rd[8] == 'refunded' then answer[1] = 'already_refunded'; return answer end
local rkey = prefix .. 'r:' .. string.format('%d', math.floor(serial / 128))
local field = serial % 128
local rec = redis.call('HGET', rkey, field)
local st, camp, member, extra = string.match(rec, '^(%a)(%d+)|([^|]*)|?(.*)$')
answer[7] = redis.call('HGET', prefix .. 'camps', '#' .. camp) or ''
if st == 't' or st == 'g' then answer[1] = 'transferred'; return answer end
local kind = redis.call('HGET', KEYS[1], 'kind')
local day = tonumber(rd[7])
local nums = {}
for x in string.gmatch(extra, '%d+') do nums[#nums + 1] = tonumber(x) end
if kind == 'count_card' then
  local used = nums[3]
  if nums[2] == day and used > 0 then used = used - 1 end
  extra = (nums[1] + 1) .. ',' .. nums[2] .. ',' .. used
elseif kind == 'duration_card' then
  local used = nums[3]
  if nums[2] == day and used > 0 then used = used - 1 end
  extra = nums[1] .. ',' .. nums[2] .. ',' .. used .. ',' .. nums[4]
elseif kind == 'gift_card' then
  extra = (nums[1] + tonumber(rd[6])) .. ',' .. nums[2]
end
local tail = ''
if extra ~= '' then tail = '|' .. extra end
redis.call('HSET', rkey, field, 'a' .. camp .. '|' .. member .. tail)
redis.call('HSET', rdkey, 'state', 'refunded')
return answer
