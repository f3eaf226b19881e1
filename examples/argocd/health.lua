-- Argo CD health check for billing.dealpay.dev/DealPayment.
-- Lua 5.1 (Argo CD runs it in gopher-lua); tested with Debian's lua5.1 against health_test.yaml.
--
--   not yet observed (no status, or status.observedGeneration behind metadata.generation) -> Progressing
--   Ready=True (reason Paid: every order paid and delivered)                               -> Healthy
--   Stalled=True (needs a person or a spec change, including DeliveryFailed)               -> Degraded
--   Ready reason Suspended (spec.suspend: an approval gate)                                -> Suspended
--   a finished dry run (spec.dryRun, not Reconciling) whose Payable is True                -> Healthy
--   a finished dry run whose Payable is False (OverBudget, NotPayable, NeedPayTogether)     -> Degraded
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
local reconciling = condition(status, "Reconciling")
local payable = condition(status, "Payable")
-- A dry run pays nothing and has nothing more to do once its verdict is in: the verdict is its health.
local dry_run_done = obj.spec ~= nil and obj.spec.dryRun == true and payable ~= nil and
    (reconciling == nil or reconciling.status ~= "True")
if ready.status == "True" then
  hs.status = "Healthy"
elseif stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
elseif ready.reason == "Suspended" then
  hs.status = "Suspended"
elseif dry_run_done and payable.status == "True" then
  hs.status = "Healthy"
elseif dry_run_done then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
return hs
