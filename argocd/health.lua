-- Argo CD health check for llmops.dev/LLMApp (resource.customizations.health.llmops.dev_LLMApp).
--
-- Reads only what the operator writes (kstatus conditions, status.phase, observedGeneration) and
-- decides in this order, first match wins:
--   1. being deleted (metadata.deletionTimestamp)         -> Progressing  (teardown running)
--   2. spec.suspend or phase Suspended                    -> Suspended
--   3. no status yet                                      -> Progressing  (waiting for the operator)
--   4. Stalled=True, or phase Failed                      -> Degraded     (needs a human; message says why)
--   5. PlanPending=True or phase AwaitingApproval         -> Progressing  (plan awaits approval)
--   6. Ready=True for metadata.generation                 -> Healthy
--   7. anything else (reconciling, Ready for an older
--      generation, Ready=False without Stalled)           -> Progressing
-- Lua 5.1, standard library only (gopher-lua in Argo CD); every table access is nil-guarded.

local hs = { status = "Progressing", message = "" }

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local metadata = obj.metadata or {}
local spec = obj.spec or {}
local status = obj.status
local generation = metadata.generation

if metadata.deletionTimestamp ~= nil then
  hs.message = "Deleting: tearing down the AWS resources"
  if status ~= nil and status.lastError ~= nil then
    hs.message = hs.message .. " (" .. tostring(status.lastError) .. ")"
  end
  return hs
end

if spec.suspend == true or (status ~= nil and status.phase == "Suspended") then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: no Terraform runs until it is false"
  return hs
end

if status == nil then
  hs.message = "Waiting for the operator to reconcile"
  return hs
end

local stalled = condition(status, "Stalled")
if is_true(stalled) then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or "")
  return hs
end
if status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = status.lastError or "the last reconcile failed"
  return hs
end

if is_true(condition(status, "PlanPending")) or status.phase == "AwaitingApproval" then
  hs.message = "Terraform plan awaits approval"
  if status.plan ~= nil and status.plan.id ~= nil then
    hs.message = hs.message .. ": set spec.approvePlan to " .. tostring(status.plan.id)
  end
  return hs
end

local ready = condition(status, "Ready")
if is_true(ready) then
  local observed = ready.observedGeneration or status.observedGeneration
  if generation == nil or observed == generation then
    hs.status = "Healthy"
    hs.message = ready.message or "Ready"
    if status.url ~= nil then
      hs.message = hs.message .. " (" .. tostring(status.url) .. ")"
    end
    return hs
  end
  hs.message = "Ready for generation " .. tostring(observed) .. ", reconciling generation " .. tostring(generation)
  return hs
end

local reconciling = condition(status, "Reconciling")
if is_true(reconciling) then
  hs.message = (reconciling.reason or "Reconciling") .. ": " .. (reconciling.message or "")
  return hs
end
if ready ~= nil then
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
  return hs
end
hs.message = "Phase " .. tostring(status.phase or "Pending")
return hs
