-- Argo CD health check for atoma.network StackSettlement and Attestation.
-- Reads the kstatus-style conditions the operator writes (Ready, Reconciling, Stalled):
--   status older than the spec (observedGeneration < generation) -> Progressing
--   no conditions yet                                              -> Progressing
--   Stalled=True    (will not succeed without a new resource)      -> Degraded, its message
--   Reconciling=True (submitting or waiting for finality)          -> Progressing
--   Ready=True                                                     -> Healthy
--   anything else (e.g. Ready=False without a reason to stop)      -> Progressing
-- Lua 5.1 (Argo CD runs gopher-lua). Embedded verbatim in examples/argocd/argocd-cm-patch.yaml.
local hs = { status = "Progressing", message = "Waiting for the operator to report status" }
if obj.status == nil or obj.status.conditions == nil or #obj.status.conditions == 0 then
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local function describe(condition, fallback)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end

local ready, stalled, reconciling = nil, nil, nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Stalled" then
    stalled = condition
  elseif condition.type == "Reconciling" then
    reconciling = condition
  end
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling, "Reconciling")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end
if ready ~= nil then
  hs.message = describe(ready, "Not ready")
end
return hs
