-- A member's coupons in one or more templates, and optionally the member's account.
-- KEYS: the member-index hash of each template (the caller picks the bucket), then the account
-- hash when ARGV[3] is '1'. ARGV: 1 member id, 2 member-index field, 3 account wanted ('0'/'1').
-- A template's key prefix is its member-index key without the trailing 'm:<bucket>'.
-- Returns {per template: {days, serial1, record1, ...}..., account {tier, balance, points}?}.
-- Keys of other slots are read only on one Redis; on a cluster the caller sends one template
-- (and no account) per call.
local member, field = ARGV[1], ARGV[2]
local n = #KEYS
if ARGV[3] == '1' then n = n - 1 end
local out = {}
for i = 1, n do
  local prefix = string.match(KEYS[i], '^(.*)m:%d+$')
  local items = {''}
  local list = redis.call('HGET', KEYS[i], field)
  if list then
    for s in string.gmatch(list, '%d+') do
      local serial = tonumber(s)
      local rec = redis.call('HGET', prefix .. 'r:' .. string.format('%d', math.floor(serial / 128)),
        serial % 128)
      if rec and string.match(rec, '^%a%d+|([^|]*)') == member then
        items[#items + 1] = serial
        items[#items + 1] = rec
      end
    end
    if #items > 1 then items[1] = redis.call('GET', prefix .. 'days') or '' end
  end
  out[#out + 1] = items
end
if ARGV[3] == '1' then
  out[#out + 1] = redis.call('HMGET', KEYS[#KEYS], 'tier', 'balance', 'points')
end
return out
