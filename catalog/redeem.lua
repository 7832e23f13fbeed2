-- Redeem one use of one coupon, exactly once. KEYS[1] template counters (hash).
-- ARGV: 1 key prefix, 2 serial, 3 today (day number), 4 idempotency key or '', 5 request
-- fingerprint, 6 store, 7 order id, 8 order amount (fen), 9 discount (fen), 10 gift card spend
-- request (fen), 11 valid days, 12 fixed first day or -1, 13 fixed last day or -1,
-- 14 daily limit (0: none), 15 holder member id or '' (any holder); with KEYS[2] (the event
-- stream) the 'redeemed' event is appended in this same call, so no crash can lose it:
-- 16 event id prefix, 17 merchant, 18 coupon code, 19 template kind, 20 time (epoch ms).
-- Returns {'fresh'|'replay', answer} where answer is tab-separated: 'ok', redemption number,
-- member, spent, card state, campaign id; or one refusal word. A refusal is remembered under
-- the idempotency key like a success, so a retry always sees the first answer.
local prefix, serial, today = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ikey = nil
if ARGV[4] ~= '' then
  ikey = prefix .. 'idem:' .. ARGV[4]
  local prev = redis.call('GET', ikey)
  if prev then
    local fp, answer = string.match(prev, '^([^\n]*)\n(.*)$')
    if fp ~= ARGV[5] then return {'mismatch', ''} end
    return {'replay', answer}
  end
end
local function finish(parts)
  local answer = table.concat(parts, '\t')
  if ikey then redis.call('SET', ikey, ARGV[5] .. '\n' .. answer, 'EX', 604800) end
  return {'fresh', answer}
end
local rkey = prefix .. 'r:' .. string.format('%d', math.floor(serial / 128))
local field = serial % 128
local rec = redis.call('HGET', rkey, field)
if not rec then return finish({'not_found'}) end
local st, camp, member, extra = string.match(rec, '^(%a)(%d+)|([^|]*)|?(.*)$')
if ARGV[15] ~= '' and ARGV[15] ~= member then return finish({'not_holder'}) end
if st == 'r' then return finish({'already_redeemed'}) end
if st == 'v' then return finish({'void'}) end
if st == 'i' then return finish({'inactive'}) end
if st == 'g' then return finish({'transfer_pending'}) end
if st == 't' then return finish({'transferred'}) end
local issue = 0
for first, d in string.gmatch(redis.call('GET', prefix .. 'days') or '', '(%d+):(%d+);') do
  if tonumber(first) > serial then break end
  issue = tonumber(d)
end
local vdays, vfrom, vuntil = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local first, last = issue, 1000000000
if vfrom >= 0 then first = vfrom end
if vdays > 0 then last = issue + vdays - 1 end
if vuntil >= 0 then last = vuntil end
if today < first then return finish({'not_yet_valid'}) end
if today > last then return finish({'expired'}) end
local kind = redis.call('HGET', KEYS[1], 'kind')
local limit = tonumber(ARGV[14])
local spent, state = 0, st
local nums = {}
for x in string.gmatch(extra, '%d+') do nums[#nums + 1] = tonumber(x) end
if kind == 'count_card' then
  local left, lastday, used = nums[1], nums[2], nums[3]
  if left <= 0 then return finish({'used_up'}) end
  if lastday ~= today then used = 0 end
  if limit > 0 and used >= limit then return finish({'daily_limit'}) end
  left, used = left - 1, used + 1
  if left == 0 then state = 'r' end
  extra = left .. ',' .. today .. ',' .. used
elseif kind == 'duration_card' then
  local e, lastday, used, days = nums[1], nums[2], nums[3], nums[4]
  if e == 0 then e = today + days - 1 end  -- valid from first use
  if today > e then return finish({'expired'}) end
  if lastday ~= today then used = 0 end
  if limit > 0 and used >= limit then return finish({'daily_limit'}) end
  used = used + 1
  extra = e .. ',' .. today .. ',' .. used .. ',' .. days
elseif kind == 'gift_card' then
  local balance, transfers = nums[1], nums[2]
  spent = math.min(balance, tonumber(ARGV[10]))
  if spent <= 0 then return finish({'insufficient_balance'}) end
  balance = balance - spent
  if balance == 0 then state = 'r' end
  extra = balance .. ',' .. transfers
else
  state = 'r'
end
local tail = ''
if extra ~= '' then tail = '|' .. extra end
redis.call('HSET', rkey, field, state .. camp .. '|' .. member .. tail)
local n = redis.call('HINCRBY', KEYS[1], 'rdseq', 1)
redis.call('HSET', prefix .. 'rd:' .. n, 'serial', serial, 'member', member, 'store', ARGV[6],
  'order', ARGV[7], 'amount', ARGV[8], 'discount', ARGV[9], 'spent', spent, 'day', today,
  'state', 'ok')
local campaign = redis.call('HGET', prefix .. 'camps', '#' .. camp) or ''
if KEYS[2] then
  -- one row in analytics.events.COLUMNS order (and its count, 'n', as every emitter writes:
  -- the loader then need not decode the entry); a gift card pays with value sold earlier, so
  -- its use is recorded as spent, not as a discount
  local reason = ARGV[19]
  if spent > 0 then reason = 'gift_card_spent:' .. spent end
  local discount = tonumber(ARGV[9])
  redis.call('XADD', KEYS[2], '*', 'e', cjson.encode({{ARGV[16] .. n, 'redeemed', ARGV[17],
    campaign, member, ARGV[18], '', ARGV[6], ARGV[7], tonumber(ARGV[8]), discount, discount,
    reason, tonumber(ARGV[20])}}), 'n', 1)
end
return finish({'ok', n, member, spent, extra, campaign})
