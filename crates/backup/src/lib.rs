//! Backup adapter: the native format, IntuneCD import and the four sources
//! (Filled in by its own issue.)
