-- Argo CD resource actions of a RestoreRun: `approve` while a preview waits for approval.
local actions = {}
local previewed = obj.status ~= nil and obj.status.preview ~= nil and obj.status.preview.digest ~= nil
    and obj.status.tenant ~= nil and obj.status.tenant.label ~= nil
local phase = obj.status ~= nil and obj.status.phase or ""
actions["approve"] = {
  ["disabled"] = not (previewed and (phase == "Previewed" or phase == "AwaitingConfirmation")),
  ["iconClass"] = "fa fa-fw fa-check",
  ["displayName"] = "Approve the previewed restore"
}
return actions
