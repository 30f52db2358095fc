//! A stateful Microsoft Graph simulator for Intune, used by tests and the demo
//! (Filled in by its own issue.)
