-- checkin.lua: the decisions of rules/airline-checkin.yaml (version 1) for
-- one contact, in Redis, as one script: the Redis + Lua peer that nbad is
-- compared with (loadtest/compare.sh).
--
--   EVALSHA <sha> 2 cust:<id> inc:<id> <id> <channel> <touchpoint> <cabin> <language>
--
-- KEYS[1]  hash of the customer (nbaredisload): name, tier, predicted_ltv,
--          language, ... ; missing for an unknown customer
-- KEYS[2]  sorted set of the customer's incidents scored by occurred_at (ms),
--          members "<date>|<severity>|<resolved>|<kind>|<flight>|<incident_id>"
-- ARGV     customer id, channel as rule files name it (kiosk, desk, ivr, ...
--          or ""), touchpoint, booked cabin ("" when not sent), language
--          picked at the contact point ("" when none)
--
-- Returns { customer_id, known (1/0), language, ruleset, action... }, each
-- action { type, rule_id, message, reason, follow_up (1/0), param, value },
-- best first, as nbad's Decision: the same rules, the same language choice,
-- the same message and reason texts per language and channel, with the
-- customer's name, the incident's kind (labelled), date and flight filled in.
--
-- The rules, as rules/airline-checkin.yaml states them:
--   recovery-upgrade (100, group service-recovery): touchpoint checkin and
--     (predicted_ltv >= 20000 or tier platinum) and cabin Y or W and an open
--     incident of severity >= 2 younger than 180 days -> upgrade (cabin F) and
--     apology_letter (follow-up)
--   recovery-apology (50, same group): touchpoint checkin and an open incident
--     younger than 180 days -> apology_letter (follow-up)
--   first-language (80): known, no language picked at the contact point, and
--     the customer's language is spoken -> set_language
--   goodwill-miles (table, 30): touchpoint checkin; the worst severity of the
--     open incidents younger than 90 days, by tier: platinum >= 3 -> 20000
--     miles (row 1), 1..2 -> 10000 (row 2); gold >= 3 -> 10000 (row 3),
--     1..2 -> 5000 (row 4); silver or none >= 4 -> 2500 (row 5); otherwise
--     nothing -> goodwill_miles (follow-up), rule id goodwill-miles#<row>
--   greeting (10): known with a name -> greet
-- The triggering incident of a recovery rule is the most recent one that
-- passes its filter; of the miles table the first in incident_id order with
-- the worst severity (nbad reads a customer's incidents in that order).
-- The contact history is not kept here: nbad runs with record_contacts off
-- for the comparison, so its policy (once per incident, caps) and the
-- upgrade-confirmed rule never come into play.
--
-- Two ways to run it, both measured by compare.sh:
--   SCRIPT LOAD, then EVALSHA per request. Redis runs the whole file on every
--   call and keeps nothing between calls, so the constant tables below are
--   built per call (the texts only for the decision's language).
--   As a Redis 7 function: everything above the line "-- ---- per call" is
--   the library, loaded once with its tables; the rest is the body of
--   redis.register_function('checkin', function(KEYS, ARGV) ... end). See
--   compare.sh (function_library) for the wrapping, and FCALL checkin 2 ...

local RULESET = 'airline-checkin@1'
local MAX_AGE_MS = 180 * 86400000
local MILES_AGE_MS = 90 * 86400000

-- Languages spoken, by lower-case tag, with the rule file's aliases.
local SPOKEN = {
  en = 'en', it = 'it', ['zh-hant'] = 'zh-Hant', ['zh-hans'] = 'zh-Hans',
  ['zh-tw'] = 'zh-Hant', ['zh-hk'] = 'zh-Hant', ['zh-mo'] = 'zh-Hant',
  ['zh-cn'] = 'zh-Hans', ['zh-sg'] = 'zh-Hans',
  -- as usually written, so that they are found without lowering the tag
  ['zh-Hant'] = 'zh-Hant', ['zh-Hans'] = 'zh-Hans', ['zh-TW'] = 'zh-Hant',
  ['zh-HK'] = 'zh-Hant', ['zh-MO'] = 'zh-Hant', ['zh-CN'] = 'zh-Hans', ['zh-SG'] = 'zh-Hans',
}

-- RFC 4647 lookup: the whole tag, then shorter by one subtag at a time;
-- case-insensitive, '_' as '-'.
local function speaks(tag)
  if not tag or tag == '' then return nil end
  local lang = SPOKEN[tag]
  if lang then return lang end
  tag = string.gsub(string.lower(tag), '_', '-')
  while tag ~= '' do
    local lang = SPOKEN[tag]
    if lang then return lang end
    tag = string.match(tag, '^(.*)%-[^-]*$') or ''
  end
  return nil
end

-- The texts of one language: messages by "key/channel" and incident kinds.
local function build_texts(lang)
  if lang == 'it' then
    return {
      ['recovery_upgrade/default'] = "Ci scusiamo per {kind} durante il suo ultimo volo. Per ringraziarla della sua fedeltà, oggi viaggerà in prima classe.",
      ['recovery_upgrade/desk'] = "Upgrade in prima classe confermato. Comunichi a {name} che è un gesto di scuse per {kind} durante un volo recente e un ringraziamento per la sua fedeltà.",
      ['recovery_upgrade/kiosk'] = "Buone notizie, {name}: oggi viaggerà in prima classe. Ci scusiamo ancora per {kind} durante il suo ultimo volo e la ringraziamo per averci scelto.",
      ['recovery_upgrade/ivr'] = "Ci scusiamo per {kind} durante il suo ultimo volo. Per farci perdonare, oggi le abbiamo assegnato un posto in prima classe.",
      ['apology_letter_upgrade/default'] = "Seguirà una lettera di scuse per {kind} durante il volo del {date}.",
      ['apology_letter_upgrade/desk'] = "Informi {name} che riceverà per posta una lettera di scuse per {kind} (volo {flight}).",
      ['apology_letter_upgrade/kiosk'] = "Le scriveremo anche una lettera per scusarci come si deve per {kind} durante il volo del {date}.",
      ['apology_letter_upgrade/ivr'] = "Le invieremo anche una lettera di scuse per quanto accaduto durante il suo volo.",
      ['apology_letter/default'] = "Ci scusiamo per {kind} durante il volo del {date}. Seguirà una lettera di scuse.",
      ['apology_letter/desk'] = "Si scusi con {name} per {kind} (volo {flight}) e lo informi che seguirà una lettera.",
      ['apology_letter/kiosk'] = "Ci scusiamo per {kind} durante il volo del {date}. Le scriveremo per scusarci come si deve.",
      ['apology_letter/ivr'] = "Ci scusiamo per quanto accaduto durante il suo ultimo volo. Le invieremo una lettera di scuse.",
      ['first_language/default'] = "Da questo momento proseguiamo in italiano.",
      ['first_language/desk'] = "La prima lingua del passeggero è l'italiano: se possibile, prosegua in italiano.",
      ['first_language/kiosk'] = "Le diamo il benvenuto! Da ora le schermate sono in italiano.",
      ['first_language/ivr'] = "Da questo momento proseguiamo in italiano.",
      ['greeting/default'] = "Buongiorno, {name}.",
      ['greeting/desk'] = "Saluti il passeggero per nome: {name}.",
      ['greeting/kiosk'] = "Che piacere rivederla, {name}!",
      ['greeting/ivr'] = "Buongiorno {name}, grazie per averci chiamato.",
      ['goodwill_miles/default'] = "Come gesto di cortesia, le accrediteremo delle miglia sul suo conto.",
      ['goodwill_miles/desk'] = "Informi {name} che dopo questo viaggio le verranno accreditate miglia di cortesia.",
      ['goodwill_miles/kiosk'] = "Come gesto di cortesia, le accrediteremo delle miglia, {name}.",
      ['goodwill_miles/ivr'] = "Come gesto di cortesia, le accrediteremo delle miglia sul suo conto.",
      ['kind/ife_broken'] = "il sistema di intrattenimento di bordo guasto",
      ['kind/delay'] = "il ritardo",
      ['kind/lost_baggage'] = "lo smarrimento del suo bagaglio",
      ['kind/downgrade'] = "il declassamento del suo posto",
      ['kind/complaint'] = "il disservizio che ci ha segnalato",
    }
  elseif lang == 'zh-Hant' then
    return {
      ['recovery_upgrade/default'] = "對於您上次航班遇到的{kind}，我們深表歉意。為感謝您一直以來的支持，今天已為您升等至頭等艙。",
      ['recovery_upgrade/desk'] = "頭等艙升等已確認。請告知{name}：這是我們對其近期航班上{kind}的致歉，並感謝其長期支持。",
      ['recovery_upgrade/kiosk'] = "{name}，好消息：您今天已升等至頭等艙。再次為您上次航班遇到的{kind}致歉，感謝您選擇我們。",
      ['recovery_upgrade/ivr'] = "對於您上次航班遇到的{kind}，我們深感抱歉。為表歉意，我們已將您今天的座位升等至頭等艙。",
      ['apology_letter_upgrade/default'] = "我們將寄上一封信，為您在 {date} 航班上遇到的{kind}致歉。",
      ['apology_letter_upgrade/desk'] = "請告知{name}：我們將郵寄致歉信，為其航班 {flight} 上的{kind}致歉。",
      ['apology_letter_upgrade/kiosk'] = "我們也會寫信給您，為您在 {date} 航班上遇到的{kind}正式致歉。",
      ['apology_letter_upgrade/ivr'] = "我們也會寄一封致歉信給您，為您航班上發生的事情表達歉意。",
      ['apology_letter/default'] = "對於您在 {date} 航班上遇到的{kind}，我們深表歉意。我們將寄上致歉信。",
      ['apology_letter/desk'] = "請為航班 {flight} 上的{kind}向{name}致歉，並告知我們將寄上致歉信。",
      ['apology_letter/kiosk'] = "對於您在 {date} 航班上遇到的{kind}，我們深表歉意，並將寫信正式致歉。",
      ['apology_letter/ivr'] = "對於您上次航班上發生的事情，我們深表歉意，並將寄上一封致歉信。",
      ['first_language/default'] = "接下來我們將以繁體中文為您服務。",
      ['first_language/desk'] = "旅客慣用繁體中文，請盡量以中文為其服務。",
      ['first_language/kiosk'] = "歡迎！畫面已切換為繁體中文。",
      ['first_language/ivr'] = "接下來我們將以中文為您服務。",
      ['greeting/default'] = "{name}，您好。",
      ['greeting/desk'] = "請以姓名問候旅客：{name}。",
      ['greeting/kiosk'] = "{name}，歡迎回來！",
      ['greeting/ivr'] = "{name}您好，感謝您的來電。",
      ['goodwill_miles/default'] = "為表歉意，我們將在您的帳戶中存入里程。",
      ['goodwill_miles/desk'] = "請告知{name}：本次旅程後將存入致意里程。",
      ['goodwill_miles/kiosk'] = "{name}，為表歉意，我們將在您的帳戶中存入里程。",
      ['goodwill_miles/ivr'] = "為表歉意，我們將在您的帳戶中存入里程。",
      ['kind/ife_broken'] = "機上娛樂系統故障",
      ['kind/delay'] = "延誤",
      ['kind/lost_baggage'] = "行李遺失",
      ['kind/downgrade'] = "艙位降級",
      ['kind/complaint'] = "服務問題",
    }
  elseif lang == 'zh-Hans' then
    return {
      ['recovery_upgrade/default'] = "对于您上次航班遇到的{kind}，我们深表歉意。为感谢您一直以来的支持，今天已为您升舱至头等舱。",
      ['recovery_upgrade/desk'] = "头等舱升舱已确认。请告知{name}：这是我们对其近期航班上{kind}的致歉，并感谢其长期支持。",
      ['recovery_upgrade/kiosk'] = "{name}，好消息：您今天已升舱至头等舱。再次为您上次航班遇到的{kind}致歉，感谢您选择我们。",
      ['recovery_upgrade/ivr'] = "对于您上次航班遇到的{kind}，我们深感抱歉。为表歉意，我们已将您今天的座位升至头等舱。",
      ['apology_letter_upgrade/default'] = "我们将寄上一封信，为您在 {date} 航班上遇到的{kind}致歉。",
      ['apology_letter_upgrade/desk'] = "请告知{name}：我们将邮寄致歉信，为其航班 {flight} 上的{kind}致歉。",
      ['apology_letter_upgrade/kiosk'] = "我们也会写信给您，为您在 {date} 航班上遇到的{kind}正式致歉。",
      ['apology_letter_upgrade/ivr'] = "我们也会寄一封致歉信给您，为您航班上发生的事情表达歉意。",
      ['apology_letter/default'] = "对于您在 {date} 航班上遇到的{kind}，我们深表歉意。我们将寄上致歉信。",
      ['apology_letter/desk'] = "请为航班 {flight} 上的{kind}向{name}致歉，并告知我们将寄上致歉信。",
      ['apology_letter/kiosk'] = "对于您在 {date} 航班上遇到的{kind}，我们深表歉意，并将写信正式致歉。",
      ['apology_letter/ivr'] = "对于您上次航班上发生的事情，我们深表歉意，并将寄上一封致歉信。",
      ['first_language/default'] = "接下来我们将用简体中文为您服务。",
      ['first_language/desk'] = "旅客惯用简体中文，请尽量用中文为其服务。",
      ['first_language/kiosk'] = "欢迎！界面已切换为简体中文。",
      ['first_language/ivr'] = "接下来我们将用中文为您服务。",
      ['greeting/default'] = "{name}，您好。",
      ['greeting/desk'] = "请用姓名问候旅客：{name}。",
      ['greeting/kiosk'] = "{name}，欢迎回来！",
      ['greeting/ivr'] = "{name}您好，感谢您的来电。",
      ['goodwill_miles/default'] = "为表歉意，我们将在您的账户中存入里程。",
      ['goodwill_miles/desk'] = "请告知{name}：本次旅程后将存入致意里程。",
      ['goodwill_miles/kiosk'] = "{name}，为表歉意，我们将在您的账户中存入里程。",
      ['goodwill_miles/ivr'] = "为表歉意，我们将在您的账户中存入里程。",
      ['kind/ife_broken'] = "机上娱乐系统故障",
      ['kind/delay'] = "延误",
      ['kind/lost_baggage'] = "行李丢失",
      ['kind/downgrade'] = "舱位降级",
      ['kind/complaint'] = "服务问题",
    }
  end
  return {
    ['recovery_upgrade/default'] = "We are sorry about {kind} on your recent flight. To thank you for your loyalty, you have been upgraded to First Class today.",
    ['recovery_upgrade/desk'] = "Upgrade to First confirmed. Tell {name} that it is our apology for {kind} on a recent flight, and thank them for their loyalty.",
    ['recovery_upgrade/kiosk'] = "Good news, {name}: you have been upgraded to First Class. We are sorry about {kind} on your recent flight, and thank you for flying with us.",
    ['recovery_upgrade/ivr'] = "We are sorry about {kind} on your recent flight. To make up for it, we have upgraded you to First Class today.",
    ['apology_letter_upgrade/default'] = "A letter of apology for {kind} on your flight of {date} will follow.",
    ['apology_letter_upgrade/desk'] = "Let {name} know that a letter of apology for {kind} (flight {flight}) will follow by post.",
    ['apology_letter_upgrade/kiosk'] = "We will also write to you to apologise properly for {kind} on your flight of {date}.",
    ['apology_letter_upgrade/ivr'] = "We will also send you a letter to apologise for what happened on your flight.",
    ['apology_letter/default'] = "We are sorry about {kind} on your flight of {date}. A letter of apology will follow.",
    ['apology_letter/desk'] = "Apologise to {name} for {kind} (flight {flight}) and let them know a letter will follow.",
    ['apology_letter/kiosk'] = "We are sorry about {kind} on your flight of {date}. We will write to you to apologise properly.",
    ['apology_letter/ivr'] = "We are sorry about what happened on your recent flight. We will send you a letter of apology.",
    ['first_language/default'] = "We will continue in English.",
    ['first_language/desk'] = "The passenger's first language is English: please serve them in English.",
    ['first_language/kiosk'] = "Welcome! The screens are now in English.",
    ['first_language/ivr'] = "We will continue in English.",
    ['greeting/default'] = "Welcome, {name}.",
    ['greeting/desk'] = "Greet the passenger by name: {name}.",
    ['greeting/kiosk'] = "Welcome back, {name}!",
    ['greeting/ivr'] = "Hello {name}, thank you for calling.",
    ['goodwill_miles/default'] = "As a goodwill gesture, we will credit miles to your account.",
    ['goodwill_miles/desk'] = "Tell {name} that goodwill miles will be credited to their account after this trip.",
    ['goodwill_miles/kiosk'] = "As a goodwill gesture, we will credit miles to your account, {name}.",
    ['goodwill_miles/ivr'] = "As a goodwill gesture, we will credit miles to your account.",
    ['kind/ife_broken'] = "the broken in-flight entertainment system",
    ['kind/delay'] = "the delay",
    ['kind/lost_baggage'] = "your lost baggage",
    ['kind/downgrade'] = "the downgrade of your seat",
    ['kind/complaint'] = "the service problem you reported",
  }
end

-- Reasons are for staff: always in English (agent_language: en).
local function reason(key, v)
  local t
  if key == 'upgrade' then
    t = "Valuable passenger (tier {tier}, predicted value {pltv}) with an open service incident: {kind}, flight {flight} on {date}, severity {severity} (incident {id}). Service recovery: upgrade to First; an apology letter follows."
  elseif key == 'miles' then
    t = "Goodwill miles for tier {tier} after an open service incident in the last 90 days: {kind} (incident {id}, severity {severity})."
  elseif key == 'apology' then
    t = "Open service incident: {kind}, flight {flight} on {date}, severity {severity} (incident {id}). An apology letter will be sent after this contact."
  else
    t = "The passenger's first language is {langname} and the contact point did not choose one."
  end
  return (string.gsub(t, '{(%w+)}', v))
end

local LANGUAGE_NAMES = {
  en = 'English', it = 'Italian', ['zh-Hant'] = 'Chinese (Traditional)',
  ['zh-Hans'] = 'Chinese (Simplified)',
}
local KIND_EN = {
  ife_broken = 'the broken in-flight entertainment system', delay = 'the delay',
  lost_baggage = 'your lost baggage', downgrade = 'the downgrade of your seat',
  complaint = 'the service problem you reported',
}

local TEXTS = {} -- by language, built on first use
local function texts(lang)
  local t = TEXTS[lang]
  if not t then
    t = build_texts(lang)
    TEXTS[lang] = t
  end
  return t
end

-- ---- per call
local cid, channel, touchpoint, cabin, picked = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

-- ---- facts
local c = redis.call('HMGET', KEYS[1], 'name', 'tier', 'predicted_ltv', 'language')
local name, tier, pltv, clang = c[1], c[2], c[3], c[4]
local known = name or tier or pltv or clang
local lang = speaks(picked) or (known and speaks(clang)) or 'en'

-- ---- match and arbitrate
local upgrade, apology -- the triggering incidents, { date, severity, kind, flight, id }
local miles, miles_row, worst -- goodwill miles: amount, table row, triggering incident
if known and touchpoint == 'checkin' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local recent = redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf', '(' .. (now - MAX_AGE_MS),
                            'WITHSCORES')
  local open_any, open_severe
  for i = 1, #recent, 2 do
    local date, sev, resolved, kind, flight, id =
      string.match(recent[i], '^([^|]*)|(%d)|(%d)|([^|]*)|([^|]*)|(.*)$')
    if resolved == '0' then
      local inc = { date = date, severity = sev, kind = kind, flight = flight, id = id }
      open_any = open_any or inc
      if not open_severe and tonumber(sev) >= 2 then
        open_severe = inc
      end
      if tonumber(recent[i + 1]) > now - MILES_AGE_MS and (not worst
          or sev > worst.severity or (sev == worst.severity and id < worst.id)) then
        worst = inc
      end
    end
  end
  if worst then
    local sev = tonumber(worst.severity)
    if tier == 'platinum' then
      miles, miles_row = sev >= 3 and '20000' or '10000', sev >= 3 and 1 or 2
    elseif tier == 'gold' then
      miles, miles_row = sev >= 3 and '10000' or '5000', sev >= 3 and 3 or 4
    elseif (tier == 'silver' or tier == 'none') and sev >= 4 then
      miles, miles_row = '2500', 5
    end
  end
  local ltv = tonumber(pltv)
  local valuable = (ltv and ltv >= 20000) or tier == 'platinum'
  if open_severe and valuable and (cabin == 'Y' or cabin == 'W') then
    upgrade = open_severe
  elseif open_any then
    apology = open_any
  end
end
local first_language = known and picked == '' and speaks(clang)
local greet = known and name and name ~= ''

local reply = { cid, known and 1 or 0, lang, RULESET }
if not (upgrade or apology or first_language or miles or greet) then
  return reply
end

-- ---- render, best first
local T = texts(lang)
local function say(key, inc)
  local text = T[key .. '/' .. channel] or T[key .. '/default']
  local v = { name = name or '' }
  if inc then
    v.kind = T['kind/' .. inc.kind] or inc.kind
    v.date, v.flight = inc.date, inc.flight
  end
  return (string.gsub(text, '{(%w+)}', v))
end
local function reason_vars(inc)
  return { tier = tier or '', pltv = pltv or '', kind = KIND_EN[inc.kind] or inc.kind,
           flight = inc.flight, date = inc.date, severity = inc.severity, id = inc.id }
end

if upgrade then
  local why = reason('upgrade', reason_vars(upgrade))
  reply[#reply + 1] = { 'upgrade', 'recovery-upgrade', say('recovery_upgrade', upgrade), why, 0,
                        'cabin', 'F' }
  reply[#reply + 1] = { 'apology_letter', 'recovery-upgrade',
                        say('apology_letter_upgrade', upgrade), why, 1, 'incident', upgrade.id }
end
if first_language then
  reply[#reply + 1] = { 'set_language', 'first-language', say('first_language'),
                        reason('language', { langname = LANGUAGE_NAMES[lang] }), 0,
                        'language', first_language }
end
if apology then
  reply[#reply + 1] = { 'apology_letter', 'recovery-apology', say('apology_letter', apology),
                        reason('apology', reason_vars(apology)), 1, 'incident', apology.id }
end
if miles then
  reply[#reply + 1] = { 'goodwill_miles', 'goodwill-miles#' .. miles_row, say('goodwill_miles'),
                        reason('miles', reason_vars(worst)), 1, 'miles', miles }
end
if greet then
  reply[#reply + 1] = { 'greet', 'greeting', say('greeting'), '', 0 }
end
return reply
