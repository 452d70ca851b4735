-- Argo CD health check for llmops.dev/LLMApp (resource.customizations.health.llmops.dev_LLMApp).
--
-- Reads only what the operator writes (kstatus conditions, status.observedGeneration, status.plan,
-- status.url) and decides in this order, first match wins:
--   1. no status or no conditions yet                         -> Progressing  (waiting for the operator)
--   2. status for an older metadata.generation                -> Progressing  (latest spec not looked at yet)
--   3. spec.suspend: true                                     -> Suspended    (no Terraform runs)
--   4. Stalled=True                                           -> Degraded     (needs a human; message says why)
--   5. PlanPending=True and phase AwaitingApproval            -> Suspended    (plan held for spec.approvePlan)
--   6. Ready=True                                             -> Healthy      (message notes Drifted=True)
--   7. anything else (Reconciling, Ready=False not stalled)   -> Progressing
-- Objects being deleted never get here: Argo CD reports them itself ("Pending deletion").
--
-- Runs in Argo CD's default sandbox (gopher-lua with only base, table, package and os.time/date):
-- no string or math library and no string methods, so only `..`, tostring, tonumber, ipairs,
-- type and table.concat. Works unchanged with useOpenLibs. Every table access is nil-guarded.

local hs = { status = "Progressing", message = "" }

local function condition(conditions, kind)
  for _, c in ipairs(conditions) do
    if type(c) == "table" and c.type == kind then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local function text(value, default)
  if value == nil or value == "" then
    return default
  end
  return tostring(value)
end

local metadata = obj.metadata or {}
local spec = obj.spec or {}
local status = obj.status
local generation = tonumber(metadata.generation)

if type(status) ~= "table" or type(status.conditions) ~= "table" or status.conditions[1] == nil then
  hs.message = "Waiting for the operator"
  return hs
end

local conditions = status.conditions
local ready = condition(conditions, "Ready")
local reconciling = condition(conditions, "Reconciling")

-- The older of status.observedGeneration and the Ready condition's observedGeneration.
local observed = tonumber(status.observedGeneration)
if ready ~= nil and tonumber(ready.observedGeneration) ~= nil then
  local ready_observed = tonumber(ready.observedGeneration)
  if observed == nil or ready_observed < observed then
    observed = ready_observed
  end
end
if generation ~= nil and observed ~= nil and observed < generation then
  hs.message = "Generation " .. tostring(generation) .. " not reconciled yet (status is for generation "
    .. tostring(observed) .. ")"
  return hs
end

if spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: no Terraform runs until it is false"
  return hs
end

local stalled = condition(conditions, "Stalled")
if is_true(stalled) then
  hs.status = "Degraded"
  hs.message = text(stalled.reason, "Stalled") .. ": " .. text(stalled.message, "needs a human")
  return hs
end

local pending = condition(conditions, "PlanPending")
-- A held plan: phase AwaitingApproval (the operator also sets Reconciling=True for it, so that
-- kstatus does not read it as done). PlanPending alone can be left over while an approved plan
-- applies (phase Planning/Applying, Reconciling=True): that is Progressing.
if is_true(pending) and (status.phase == "AwaitingApproval" or not is_true(reconciling)) then
  hs.status = "Suspended"
  local plan = status.plan or {}
  local why = text(pending.reason, "ApprovalRequired")
  if type(plan.reasons) == "table" and plan.reasons[1] ~= nil then
    why = why .. ": " .. table.concat(plan.reasons, "; ")
  end
  if plan.id ~= nil and plan.id ~= "" then
    local id = tostring(plan.id)
    hs.message = "Plan " .. id .. " waits for approval: set spec.approvePlan: " .. id .. " (" .. why .. ")"
  else
    hs.message = "A plan waits for approval (" .. why .. "): " .. text(pending.message, "see status.plan")
  end
  return hs
end

if is_true(ready) then
  hs.status = "Healthy"
  local drifted = condition(conditions, "Drifted")
  if is_true(drifted) then
    hs.message = "Ready; drift detected: " .. text(drifted.message, "see status.drift")
    return hs
  end
  hs.message = text(ready.message, "Ready")
  if status.url ~= nil and status.url ~= "" then
    hs.message = hs.message .. " (" .. tostring(status.url) .. ")"
  end
  return hs
end

if is_true(reconciling) then
  hs.message = text(reconciling.reason, "Reconciling") .. ": " .. text(reconciling.message, "in progress")
  return hs
end
if ready ~= nil then
  hs.message = text(ready.reason, "NotReady") .. ": " .. text(ready.message, "not ready")
  return hs
end
hs.message = "Waiting for the operator (phase " .. text(status.phase, "Pending") .. ")"
return hs
