-- Issue one coupon of one template to each member of a batch, exactly once per (campaign, member).
-- KEYS[1] template counters (hash), KEYS[2] campaign id <-> number (hash '#<n>' -> id); both in
-- the template's slot.
-- ARGV[1] key prefix of the template, ARGV[2] campaign id, ARGV[3] issue day number,
-- then pairs: member id, member hash (48-bit integer computed by the caller).
-- Returns a flat array: status, serial per member. Status 1 new, 2 existing, 3 out of stock
-- (stock or budget), 4 per-member limit reached, 5 duration card extended (by this campaign,
-- now or on an earlier delivery: prefix x:<campaign#> holds member -> serial).
-- Records: prefix r:<serial/128> field serial%128 = "<state><campaign#>|<member>[|extra]".
-- Member index: prefix m:<hash % buckets> field (hash/2^32) % 8192 = comma-separated serials (the
-- 13-bit field may collide, so every candidate record is checked for its member id).
-- Issue days: serials grow with time, so meta 'days' holds "<first serial>:<day>;" once per day
-- instead of a day in every record (4 bytes a coupon).
local meta, prefix = KEYS[1], ARGV[1]
local m = redis.call('HMGET', meta, 'stock', 'budget', 'cost', 'limit', 'mbuckets', 'seq',
  'kind', 'init', 'dur', 'durfrom', 'lastday', 'state')
if not m[1] then return redis.error_reply('NOTEMPLATE template counters are missing') end
local stock, budget, cost, limit = tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
local nb, seq, kind, init = tonumber(m[5]), tonumber(m[6]), m[7], m[8]
local dur, durfrom = tonumber(m[9] or '0'), m[10]
local day = tonumber(ARGV[3])
local dayfresh = tostring(day) ~= m[11]
local camp = redis.call('HGET', KEYS[2], ARGV[2])
if not camp then
  camp = redis.call('HINCRBY', meta, 'ncamp', 1)
  redis.call('HSET', KEYS[2], ARGV[2], camp, '#' .. camp, ARGV[2])
end
camp = tostring(camp)
local out = {}
for i = 4, #ARGV, 2 do
  local member, h = ARGV[i], tonumber(ARGV[i + 1])
  local mkey = prefix .. 'm:' .. string.format('%d', h % nb)
  local field = string.format('%d', math.floor(h / 4294967296) % 8192)
  local list = redis.call('HGET', mkey, field)
  local count, found, active = 0, nil, nil
  if list then
    for s in string.gmatch(list, '%d+') do
      local n = tonumber(s)
      local rkey = prefix .. 'r:' .. string.format('%d', math.floor(n / 128))
      local rec = redis.call('HGET', rkey, n % 128)
      if rec then
        local st, c, mem = string.match(rec, '^(%a)(%d+)|([^|]*)')
        if mem == member then
          count = count + 1
          if c == camp then found = n end
          if st == 'a' then active = {n, rkey, rec} end
        end
      end
    end
  end
  if found then
    out[#out + 1] = 2; out[#out + 1] = found
  elseif kind == 'duration_card' and active then
    -- Buying a duration card again extends the one the member holds, once per campaign: the
    -- extension is recorded under the campaign (x:<campaign#>), so a redelivered batch gets
    -- the same answer without extending again.
    local n, rkey, rec = active[1], active[2], active[3]
    local xkey = prefix .. 'x:' .. camp
    if not redis.call('HGET', xkey, member) then
      local head, e, last, used, days = string.match(rec, '^(.*)|(%d+),(%d+),(%d+),(%d+)$')
      e, days = tonumber(e), tonumber(days) + dur
      if e > 0 then e = math.max(e, day - 1) + dur end
      redis.call('HSET', rkey, n % 128,
        head .. '|' .. e .. ',' .. last .. ',' .. used .. ',' .. days)
      redis.call('HSET', xkey, member, n)
    end
    out[#out + 1] = 5; out[#out + 1] = n
  elseif count >= limit then
    out[#out + 1] = 4; out[#out + 1] = 0
  elseif stock <= 0 or (budget >= 0 and budget < cost) then
    out[#out + 1] = 3; out[#out + 1] = 0
  else
    seq = seq + 1
    stock = stock - 1
    if budget >= 0 then budget = budget - cost end
    if dayfresh then
      redis.call('HSET', meta, 'lastday', day)
      redis.call('APPEND', prefix .. 'days', seq .. ':' .. day .. ';')
      dayfresh = false
    end
    local rec = (m[12] or 'a') .. camp .. '|' .. member
    if kind == 'duration_card' then
      local e = 0
      if durfrom == 'purchase' then e = day + dur - 1 end
      rec = rec .. '|' .. e .. ',0,0,' .. dur
    elseif init and init ~= '' then
      rec = rec .. '|' .. init
    end
    redis.call('HSET', prefix .. 'r:' .. string.format('%d', math.floor(seq / 128)), seq % 128, rec)
    if list then list = list .. ',' .. seq else list = tostring(seq) end
    redis.call('HSET', mkey, field, list)
    out[#out + 1] = 1; out[#out + 1] = seq
  end
end
redis.call('HSET', meta, 'stock', stock, 'budget', budget, 'seq', seq)
return out
