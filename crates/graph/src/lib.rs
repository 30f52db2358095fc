//! Microsoft Graph adapter: authentication, paging, batching, throttling and write pacing
//! (Filled in by its own issue.)
