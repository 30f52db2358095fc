-- Argo CD `approve` action: sets spec.dryRun=false and spec.confirmation to exactly the preview in
-- status. Argo CD patches as its own service account, so approvedBy names that account: list it in
-- the chart's approval.trustedAppliers and grant the action through Argo CD RBAC
-- (`p, role:intune-approver, applications, action/tenantatlas.io/RestoreRun/approve, <project>/<app>, allow`).
if obj.status == nil or obj.status.preview == nil or obj.status.tenant == nil then
  error("the run has no preview to approve yet", 0)
end
obj.spec.dryRun = false
obj.spec.confirmation = {
  reviewedImpact = true,
  tenant = obj.status.tenant.label,
  previewDigest = obj.status.preview.digest,
  approvedBy = "system:serviceaccount:argocd:argocd-server"
}
return obj
