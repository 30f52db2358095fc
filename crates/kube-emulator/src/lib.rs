//! A Kubernetes API emulator for end-to-end tests with kubectl and kube-rs (test support only)
//! (Filled in by its own issue.)
