-- Argo CD `approve` action: sets spec.dryRun=false and spec.confirmation to exactly the preview in
-- status. Argo CD patches as its own service account, so approvedBy names that account: a
-- delegated approver. List it in the chart's approval.delegatedApprovers (never trustedAppliers)
-- and grant the action through Argo CD RBAC
-- (`p, role:intune-approver, applications, action/tenantatlas.io/RestoreRun/approve, <project>/<app>, allow`). The person is
-- recorded only by Argo CD (Event `ResourceActionRan` on the Application); with approval.fourEyes
-- the API server refuses this action.
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
