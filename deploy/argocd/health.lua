-- Argo CD health of a RestoreRun (tenantatlas.io/v1alpha1), read from its kstatus conditions:
-- waiting for approval -> Suspended; blocked or failed -> Degraded; working -> Progressing; done -> Healthy.
local hs = { status = "Progressing", message = "Waiting for the restore-operator to observe the run" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "The restore-operator has not observed the latest spec yet"
  return hs
end
local ready, stalled, reconciling = nil, nil, nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then ready = condition end
  if condition.type == "Stalled" and condition.status == "True" then stalled = condition end
  if condition.type == "Reconciling" and condition.status == "True" then reconciling = condition end
end
local phase = obj.status.phase or ""
if stalled ~= nil then
  hs.status = "Degraded"
  hs.message = phase .. ": " .. (stalled.message or stalled.reason or "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = phase .. ": " .. (ready.message or "")
  return hs
end
if ready ~= nil and ready.reason == "AwaitingConfirmation" and reconciling == nil then
  hs.status = "Suspended"
  hs.message = "Awaiting approval: " .. (ready.message or "")
  return hs
end
if ready ~= nil then
  hs.message = phase .. ": " .. (ready.message or "")
end
return hs
