-- A member's coupons in one or more templates (all in one slot, or one template per call).
-- KEYS: the 'meta' key of each template. ARGV: 1 member id, 2 member hash (48-bit),
-- then the key prefix of each template in KEYS order.
-- Returns per template: {prefix, days, serial1, record1, serial2, record2, ...}.
local member, h = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 1, #KEYS do
  local prefix = ARGV[i + 2]
  local nb = tonumber(redis.call('HGET', KEYS[i], 'mbuckets') or '0')
  local items = {prefix, redis.call('GET', prefix .. 'days') or ''}
  if nb > 0 then
    local mkey = prefix .. 'm:' .. string.format('%d', h % nb)
    local list = redis.call('HGET', mkey, string.format('%d', math.floor(h / 4294967296) % 8192))
    if list then
      for s in string.gmatch(list, '%d+') do
        local n = tonumber(s)
        local rec = redis.call('HGET', prefix .. 'r:' .. string.format('%d', math.floor(n / 128)),
          n % 128)
        if rec and string.match(rec, '^%a%d+|([^|]*)') == member then
          items[#items + 1] = n
          items[#items + 1] = rec
        end
      end
    end
  end
  out[#out + 1] = items
end
return out
