-- Argo CD health check for billing.dealpay.dev/DealPayment.
-- Lua 5.1 (Argo CD runs it in gopher-lua); tested with Debian's lua5.1 against health_test.yaml.
--
--   not yet observed (no status, or status.observedGeneration behind metadata.generation) -> Progressing
--   Ready=True (reason Paid: every order paid and delivered)                               -> Healthy
--   Stalled=True (needs a person or a spec change, including DeliveryFailed)               -> Degraded
--   Ready reason Suspended (spec.suspend: an approval gate)                                -> Suspended
--   anything else (Paying, Delivering, OutcomeUnknown while looking, RateLimited, ...)     -> Progressing
--
-- The message is the Ready condition's message (its reason when the message is empty).
local hs = {}

local function condition(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local status = obj.status
local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

if status == nil or status.observedGeneration == nil or
    (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  else
    hs.message = "Waiting for the operator to observe the DealPayment"
  end
  return hs
end

local ready = condition(status, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report the Ready condition"
  return hs
end

hs.message = ready.message
if hs.message == nil or hs.message == "" then
  hs.message = ready.reason or ""
end

local stalled = condition(status, "Stalled")
if ready.status == "True" then
  hs.status = "Healthy"
elseif stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
elseif ready.reason == "Suspended" then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
return hs
