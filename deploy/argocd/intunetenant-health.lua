-- Argo CD health of an IntuneTenant (tenantatlas.io/v1alpha1), read from its kstatus conditions:
-- credentials verified -> Healthy; unusable credentials (Stalled) -> Degraded; not checked yet or
-- Graph unreachable (retrying) -> Progressing.
local hs = { status = "Progressing", message = "Waiting for the restore-operator to check the credentials" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "The restore-operator has not checked the latest spec yet"
  return hs
end
local ready, stalled = nil, nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then ready = condition end
  if condition.type == "Stalled" and condition.status == "True" then stalled = condition end
end
if stalled ~= nil then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "") .. ": " .. (stalled.message or "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
if ready ~= nil then
  hs.message = "Retrying: " .. (ready.reason or "") .. ": " .. (ready.message or "")
end
return hs
